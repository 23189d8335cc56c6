package sdk

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// IsTerminal reports whether a task in state s no longer runs (Mesos'
// terminal states). TASK_LOST is terminal, although an agent coming back
// may still report the task TASK_RUNNING again; TASK_UNREACHABLE is not.
func IsTerminal(s agorav1.TaskState) bool {
	switch s {
	case agorav1.TaskFinished, agorav1.TaskFailed, agorav1.TaskKilled, agorav1.TaskError,
		agorav1.TaskLost, agorav1.TaskDropped, agorav1.TaskGone, agorav1.TaskGoneByOperator:
		return true
	}
	return false
}

// Pool is what is left of an offer while a framework packs tasks into it.
type Pool struct {
	left resources.Resources
}

// NewPool starts a pool with all of the offer's resources.
func NewPool(offer *agorav1.Offer) (*Pool, error) {
	m, err := offer.Spec.Resources.Model()
	if err != nil {
		return nil, fmt.Errorf("sdk: offer %s: %w", offer.Name, err)
	}
	return &Pool{left: m}, nil
}

// Left is what remains.
func (p *Pool) Left() resources.Resources { return p.left }

// Fits reports whether r fits in what remains.
func (p *Pool) Fits(r agorav1.Resources) bool {
	m, err := r.Model()
	return err == nil && p.left.Contains(m)
}

// Take removes r from the pool if it fits and reports whether it did.
func (p *Pool) Take(r agorav1.Resources) bool {
	m, err := r.Model()
	if err != nil {
		return false
	}
	left, err := p.left.Subtract(m)
	if err != nil {
		return false
	}
	p.left = left
	return true
}

// TakeWithPorts takes r plus n ports (the lowest left) if all fit, and
// returns r with those ports set.
func (p *Pool) TakeWithPorts(r agorav1.Resources, n int) (agorav1.Resources, bool) {
	ports, ok := TakePorts(p.left.Ports, n)
	if !ok {
		return r, false
	}
	with := r
	with.Ports = append(append([]agorav1.PortRange(nil), r.Ports...), toAPIRanges(ports)...)
	if !p.Take(with) {
		return r, false
	}
	return with, true
}

// TakePorts picks the n lowest ports of avail, as canonical ranges; it
// reports false when avail holds fewer than n.
func TakePorts(avail resources.Ranges, n int) (resources.Ranges, bool) {
	if n <= 0 {
		return nil, true
	}
	if avail.Count() < uint64(n) {
		return nil, false
	}
	var out resources.Ranges
	need := uint64(n)
	for _, r := range avail {
		if need == 0 {
			break
		}
		take := min(need, r.Count())
		out = append(out, resources.Range{Begin: r.Begin, End: r.Begin + uint32(take) - 1})
		need -= take
	}
	return out, true
}

// Ports lists the ports of r one by one, e.g. to pass them to a command.
func Ports(r agorav1.Resources) []int32 {
	var out []int32
	for _, pr := range r.Ports {
		for p := pr.Begin; p <= pr.End; p++ { // ports end at 65535: no overflow
			out = append(out, p)
		}
	}
	return out
}

func toAPIRanges(rs resources.Ranges) []agorav1.PortRange {
	out := make([]agorav1.PortRange, 0, len(rs))
	for _, r := range rs {
		out = append(out, agorav1.PortRange{Begin: int32(r.Begin), End: int32(r.End)})
	}
	return out
}

// Fits reports whether r fits in the offer's resources.
func Fits(offer *agorav1.Offer, r agorav1.Resources) bool {
	p, err := NewPool(offer)
	return err == nil && p.Fits(r)
}

// Attribute returns the offer's agent attribute name as text: text values
// as they are, scalars and ranges in Mesos' text form. "hostname" falls
// back to the offer's hostname, as in Mesos placement constraints.
func Attribute(offer *agorav1.Offer, name string) (string, bool) {
	for _, a := range offer.Spec.Attributes {
		if a.Name != name {
			continue
		}
		switch {
		case a.Text != nil:
			return *a.Text, true
		case a.Scalar != nil:
			return a.Scalar.String(), true
		default:
			rs := make([]resources.Range, 0, len(a.Ranges))
			for _, r := range a.Ranges {
				rs = append(rs, resources.Range{Begin: uint32(r.Begin), End: uint32(r.End)})
			}
			canon, _ := resources.NewRanges(rs...)
			return canon.String(), true
		}
	}
	if name == "hostname" && offer.Spec.Hostname != "" {
		return offer.Spec.Hostname, true
	}
	return "", false
}

// ParseResources builds task resources from command-line strings: cpus such
// as "0.5" or "500m", mem such as "128Mi" ("" leaves a kind out).
func ParseResources(cpus, mem string) (agorav1.Resources, error) {
	var r agorav1.Resources
	for _, f := range []struct {
		name, val string
		dst       **resource.Quantity
	}{{"cpus", cpus, &r.CPUs}, {"mem", mem, &r.Mem}} {
		if f.val == "" {
			continue
		}
		q, err := resource.ParseQuantity(f.val)
		if err != nil {
			return r, fmt.Errorf("invalid %s %q: use a quantity such as 0.5, 500m or 128Mi", f.name, f.val)
		}
		if q.Sign() < 0 {
			return r, fmt.Errorf("invalid %s %q: must not be negative", f.name, f.val)
		}
		*f.dst = &q
	}
	if (r.CPUs == nil || r.CPUs.IsZero()) && (r.Mem == nil || r.Mem.IsZero()) {
		return r, fmt.Errorf("a task needs some cpus or mem")
	}
	if _, err := r.Model(); err != nil {
		return r, err
	}
	return r, nil
}
