package allocator

import (
	"slices"
	"strings"

	"github.com/agora-sched/agora/pkg/resources"
)

// roleNode is a role in the role tree ("a/b" is a child of "a"). A role that
// frameworks subscribe to has a virtual leaf, self, holding those
// frameworks; like Mesos' "." leaf it competes with the role's sub-roles, so
// a parent's frameworks and its children share the parent's subtree fairly.
type roleNode struct {
	name     string // full path; "" for the root
	parent   *roleNode
	children map[string]*roleNode // real sub-roles by full name
	self     *roleNode            // virtual leaf holding clients; nil if none ever
	owner    *roleNode            // for a virtual leaf: its role
	clients  []*client            // on a virtual leaf: every client of the role

	weight     float64
	configured bool // SetRole was called
	guarantee  scalars
	hasGuar    bool
	limit      scalars
	limited    resources.KindSet

	alloc       scalars // subtree allocation (own allocation for a virtual leaf)
	allocations uint64  // offers made in the subtree (tie-break)

	// rebuilt every round
	share  float64
	kids   []*roleNode // active children in DRF order (virtual leaf included)
	order  []*client   // on a virtual leaf: eligible clients in DRF order
	active bool
}

func (n *roleNode) isLeaf() bool { return n.owner != nil }

// validRoleName applies Mesos' rules: non-empty path segments, no ".",
// "..", whitespace or leading "-"; "*" only as the whole name.
func validRoleName(name string) string {
	if name == DefaultRole {
		return ""
	}
	if name == "" {
		return "role name is empty"
	}
	for seg := range strings.SplitSeq(name, "/") {
		switch {
		case seg == "":
			return "role name has an empty path segment (leading, trailing or double '/')"
		case seg == "." || seg == "..":
			return "role path segments cannot be '.' or '..'"
		case seg == "*":
			return "'*' is only valid as the whole role name"
		case seg[0] == '-':
			return "role path segments cannot start with '-'"
		case strings.ContainsFunc(seg, func(r rune) bool { return r <= ' ' || r == 0x7f }):
			return "role names cannot contain whitespace or control characters"
		}
	}
	return ""
}

// role returns the node for name, creating it and its ancestors.
func (a *Allocator) role(name string) *roleNode {
	if n, ok := a.roles[name]; ok {
		return n
	}
	parent := a.root
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		parent = a.role(name[:i])
	}
	n := &roleNode{name: name, parent: parent, weight: 1}
	if parent.children == nil {
		parent.children = map[string]*roleNode{}
	}
	parent.children[name] = n
	a.roles[name] = n
	return n
}

// leaf returns the role's virtual leaf, creating it.
func (n *roleNode) leaf() *roleNode {
	if n.self == nil {
		n.self = &roleNode{name: n.name, parent: n, owner: n}
	}
	return n.self
}

// prune drops roles that hold nothing and were never configured, so the
// tree does not grow with every role name ever seen.
func (a *Allocator) prune(n *roleNode) {
	for n != nil && n != a.root {
		if n.configured || len(n.children) > 0 || n.alloc != (scalars{}) ||
			(n.self != nil && (len(n.self.clients) > 0 || n.self.alloc != (scalars{}))) {
			return
		}
		delete(a.roles, n.name)
		delete(n.parent.children, n.name)
		n = n.parent
	}
}

// share is the dominant share of alloc over the cluster total.
func (a *Allocator) share(alloc *scalars) float64 {
	var s float64
	for k, t := range a.total {
		if t <= 0 || a.opts.ExcludedFromShares.Has(resources.Kind(k)) {
			continue
		}
		if v := float64(alloc[k]) / float64(t); v > s {
			s = v
		}
	}
	return s
}

// roleLess is the DRF order between sibling roles.
func roleLess(x, y *roleNode) bool {
	if x.share != y.share {
		return x.share < y.share
	}
	if x.allocations != y.allocations {
		return x.allocations < y.allocations
	}
	return x.name < y.name // siblings have distinct names
}

// clientLess is the DRF order between frameworks of one role.
func clientLess(x, y *client) bool {
	if x.share != y.share {
		return x.share < y.share
	}
	if x.allocations != y.allocations {
		return x.allocations < y.allocations
	}
	return x.fw.id < y.fw.id
}

// sortTree recomputes shares and rebuilds the DRF order of eligible clients
// for a new round. It reports whether the subtree has an eligible client.
func (a *Allocator) sortTree(n *roleNode) bool {
	n.kids = n.kids[:0]
	if n.isLeaf() {
		n.order = n.order[:0]
		for _, c := range n.clients {
			if c.eligible() {
				c.share = a.share(&c.alloc)
				n.order = append(n.order, c)
			}
		}
		sortClients(n.order)
		n.share = a.share(&n.alloc) / n.owner.weight
		n.active = len(n.order) > 0
		return n.active
	}
	if n.self != nil && a.sortTree(n.self) {
		n.kids = append(n.kids, n.self)
	}
	for _, c := range n.children {
		if a.sortTree(c) {
			n.kids = append(n.kids, c)
		}
	}
	sortRoles(n.kids)
	if n != a.root {
		n.share = a.share(&n.alloc) / n.weight
	}
	n.active = len(n.kids) > 0
	return n.active
}

func sortClients(s []*client) {
	slices.SortFunc(s, func(x, y *client) int {
		if clientLess(x, y) {
			return -1
		}
		if clientLess(y, x) {
			return 1
		}
		return 0
	})
}

func sortRoles(s []*roleNode) {
	slices.SortFunc(s, func(x, y *roleNode) int {
		if roleLess(x, y) {
			return -1
		}
		if roleLess(y, x) {
			return 1
		}
		return 0
	})
}

// moveClient restores the order of s after the key of s[i] grew.
func moveClient(s []*client, i int) {
	c := s[i]
	lo, hi := i+1, len(s) // first index in [i+1, len) whose element is not less than c
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if clientLess(s[m], c) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	copy(s[i:lo-1], s[i+1:lo])
	s[lo-1] = c
}

func moveRole(s []*roleNode, i int) {
	r := s[i]
	lo, hi := i+1, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if roleLess(s[m], r) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	copy(s[i:lo-1], s[i+1:lo])
	s[lo-1] = r
}

// indexClient finds c in s, which is sorted and holds c.
func indexClient(s []*client, c *client) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if clientLess(s[m], c) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func indexRole(s []*roleNode, r *roleNode) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if roleLess(s[m], r) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
