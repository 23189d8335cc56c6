package allocator

import "hash/maphash"

// agentIndex finds agents by name. Every Recover looks its agent up, in no
// particular order, so at 10,000+ agents each lookup is a cache miss on the
// index before the one on the agent. The table is two arrays over the same
// slots: the agents, and a 16-bit tag of each name's hash, so a lookup
// reads a line of each (independent loads, fetched together) and then the
// agent, whose first line holds the name, compared only when the tag
// matches. 10 bytes a slot keep the table small: together with the name
// bytes that hashing reads and the caller's own tables, it competes for
// the second-level cache, and a larger one made lookups at 20,000 agents
// disproportionately slower than at 10,000. Linear probing at a load of at
// most three quarters; deletion shifts entries back, so there are no
// tombstones.
type agentIndex struct {
	seed maphash.Seed
	ags  []*agent // nil: empty slot
	tags []uint16
	n    int
}

func newAgentIndex() agentIndex {
	return agentIndex{seed: maphash.MakeSeed(), ags: make([]*agent, 16), tags: make([]uint16, 16)}
}

// hash returns name's tag and home slot.
func (x *agentIndex) hash(name string) (tag uint16, home int) {
	h := maphash.String(x.seed, name)
	return uint16(h >> 48), int(h) & (len(x.ags) - 1)
}

// get returns the agent called name, or nil.
func (x *agentIndex) get(name string) *agent {
	if i := x.find(name); i >= 0 {
		return x.ags[i]
	}
	return nil
}

// find returns the slot holding name (-1 if absent).
func (x *agentIndex) find(name string) int {
	tag, i := x.hash(name)
	for mask := len(x.ags) - 1; ; i = (i + 1) & mask {
		ag := x.ags[i]
		if ag == nil {
			return -1
		}
		if x.tags[i] == tag && ag.name == name {
			return i
		}
	}
}

// put adds ag, whose name is absent.
func (x *agentIndex) put(ag *agent) {
	if 4*(x.n+1) > 3*len(x.ags) {
		x.grow()
	}
	x.insert(ag)
	x.n++
}

func (x *agentIndex) insert(ag *agent) {
	tag, i := x.hash(ag.name)
	for x.ags[i] != nil {
		i = (i + 1) & (len(x.ags) - 1)
	}
	x.ags[i], x.tags[i] = ag, tag
}

func (x *agentIndex) grow() {
	old := x.ags
	x.ags, x.tags = make([]*agent, 2*len(old)), make([]uint16, 2*len(old))
	for _, ag := range old {
		if ag != nil {
			x.insert(ag)
		}
	}
}

// remove deletes name (present), shifting back the entries of its probe
// run that could sit in its slot.
func (x *agentIndex) remove(name string) {
	mask := len(x.ags) - 1
	i := x.find(name)
	for j := (i + 1) & mask; x.ags[j] != nil; j = (j + 1) & mask {
		_, home := x.hash(x.ags[j].name)
		// The entry at j may move to i if i lies on its probe path,
		// i.e. cyclically in [home, j).
		if (j-home)&mask >= (j-i)&mask {
			x.ags[i], x.tags[i] = x.ags[j], x.tags[j]
			i = j
		}
	}
	x.ags[i], x.tags[i] = nil, 0
	x.n--
}
