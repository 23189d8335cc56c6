// Package service is an example framework on Agora's SDK, like Marathon: it
// keeps K instances of a command running, relaunches them when they fail
// or are lost, and spreads them across agents by an attribute.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/examples/batch"
	"github.com/agora-sched/agora/pkg/sdk"
)

// SlotLabel records which instance a task is, so a restarted service adopts
// its running tasks instead of launching new ones.
const SlotLabel = "service.agora.dev/instance"

// SpreadAnnotation records the SpreadBy value of the task's agent, which
// tasks do not carry otherwise, for adoption.
const SpreadAnnotation = "service.agora.dev/spread-value"

// Options say what to keep running.
type Options struct {
	// Instances to keep running (K).
	Instances int
	// Command each instance runs.
	Command agorav1.CommandInfo
	// Resources of each instance.
	Resources agorav1.Resources
	// Ports each instance gets from the offer (the agent passes them as
	// PORT0, PORT1, ...).
	Ports int
	// SpreadBy is the agent attribute instances are spread over, evenly
	// (Marathon's GROUP_BY). Defaults to "hostname".
	SpreadBy string
	// MaxPerValue, when positive, is a hard cap of instances per SpreadBy
	// value (Marathon's MAX_PER; 1 is UNIQUE).
	MaxPerValue int
	// RefuseSeconds of the filter on offers declined while satisfied.
	// Defaults to 120.
	RefuseSeconds int32
	// MaxBackoff caps the delay before relaunching an instance that keeps
	// failing (it doubles from 1 s). Defaults to 30 s.
	MaxBackoff time.Duration
	// Out receives progress lines; nil discards them.
	Out io.Writer
}

type instance struct {
	task     string
	value    string // its agent's SpreadBy value
	state    agorav1.TaskState
	launched time.Time
}

type service struct {
	o          Options
	slots      []*instance // nil: to be launched
	notBefore  []time.Time // relaunch backoff per slot
	backoff    []time.Duration
	byTask     map[string]int
	count      map[string]int       // live instances per SpreadBy value
	seen       map[string]time.Time // SpreadBy values recently offered
	newValueAt time.Time            // when a value not in seen was last offered
	suppressed bool
	running    int
}

// Run registers (or adopts) the framework described by cfg and keeps the
// instances running until ctx is done. The instances keep running after it
// returns; a new Run with the same framework adopts them.
func Run(ctx context.Context, cfg sdk.Config, o Options) error {
	if o.Instances < 0 {
		return errors.New("service: instances must not be negative")
	}
	if o.SpreadBy == "" {
		o.SpreadBy = "hostname"
	}
	if o.RefuseSeconds <= 0 {
		o.RefuseSeconds = 120
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	d, err := sdk.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	s := &service{o: o, slots: make([]*instance, o.Instances), notBefore: make([]time.Time, o.Instances),
		backoff: make([]time.Duration, o.Instances), byTask: map[string]int{}, count: map[string]int{}, seen: map[string]time.Time{}}
	// Adopt running instances before the first offer can be answered.
	tasks, err := d.Tasks(ctx)
	if err != nil {
		return err
	}
	for i := range tasks {
		s.TaskUpdate(ctx, d, &tasks[i])
	}
	fmt.Fprintf(o.Out, "service: framework %s/%s: %d/%d instances running\n", d.Namespace(), d.Name(), s.running, o.Instances)
	s.wantOffers(ctx, d, s.missing() > 0)
	err = d.Run(ctx, s)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// missing counts instances to launch.
func (s *service) missing() int {
	n := 0
	for _, in := range s.slots {
		if in == nil {
			n++
		}
	}
	return n
}

// wantOffers suppresses offers when satisfied and unsuppresses and revives
// when not (the declined agents carry long filters).
func (s *service) wantOffers(ctx context.Context, d *sdk.Driver, want bool) {
	switch {
	case want && s.suppressed:
		if d.Unsuppress(ctx) == nil && d.Revive(ctx) == nil {
			s.suppressed = false
		}
	case !want && !s.suppressed:
		s.suppressed = d.Suppress(ctx) == nil
	}
}

// OfferReceived launches at most one instance per offer, on an agent whose
// SpreadBy value runs no more instances than any other value seen lately.
// The rest of the offer is refused for the default 5 s, so the master
// offers other agents meanwhile and the instances spread; on a single
// agent, K instances take K rounds of that filter.
func (s *service) OfferReceived(ctx context.Context, d *sdk.Driver, offer *agorav1.Offer) {
	now := time.Now()
	value, ok := sdk.Attribute(offer, s.o.SpreadBy)
	if !ok {
		value = offer.Spec.AgentName
	}
	if _, known := s.seen[value]; !known {
		s.newValueAt = now
	}
	s.seen[value] = now
	slot := -1
	wait := time.Duration(0)
	for i, in := range s.slots {
		if in != nil {
			continue
		}
		if now.Before(s.notBefore[i]) {
			if w := s.notBefore[i].Sub(now); wait == 0 || w < wait {
				wait = w
			}
			continue
		}
		slot = i
		break
	}
	if slot < 0 {
		refuse := s.o.RefuseSeconds
		if wait > 0 {
			refuse = int32(wait/time.Second) + 1 // back when the backoff ends
		} else {
			s.wantOffers(ctx, d, false)
		}
		_ = d.Decline(ctx, offer, refuse)
		return
	}
	pool, err := sdk.NewPool(offer)
	var res agorav1.Resources
	fits := false
	if err == nil {
		res, fits = pool.TakeWithPorts(s.o.Resources, s.o.Ports)
	}
	if !fits || !s.evenlySpread(value, now) {
		_ = d.Decline(ctx, offer, agorav1.DefaultRefuseSeconds)
		return
	}
	name := fmt.Sprintf("%s-%d-%s", d.Name(), slot, batch.RandomID())
	info := sdk.TaskInfo{Name: name, Resources: res, Command: s.o.Command,
		Labels:      map[string]string{SlotLabel: strconv.Itoa(slot)},
		Annotations: map[string]string{SpreadAnnotation: value}}
	if _, err := d.Accept(ctx, offer, []sdk.TaskInfo{info}, sdk.Filters{}); err != nil {
		if !errors.Is(err, sdk.ErrOfferGone) {
			fmt.Fprintf(s.o.Out, "service: launching instance %d on %s: %v\n", slot, offer.Spec.AgentName, err)
		}
		return
	}
	s.place(slot, name, value, now)
	fmt.Fprintf(s.o.Out, "service: instance %d launched as %s on %s (%s=%s)\n", slot, name, offer.Spec.AgentName, s.o.SpreadBy, value)
}

// spreadSettle is how long no new SpreadBy value must have turned up
// before a value takes a second instance: longer than the decline filter,
// so that every agent with free resources is offered once in the meantime.
const spreadSettle = time.Duration(agorav1.DefaultRefuseSeconds+1) * time.Second

// evenlySpread: value hosts fewer than MaxPerValue instances, and no more
// than the least used value offered in the last two minutes; and a value
// that already hosts one takes another only once no new value has turned
// up for spreadSettle (an agent whose resources other frameworks hold is
// offered late, and one not yet seen cannot hold the others back).
func (s *service) evenlySpread(value string, now time.Time) bool {
	if s.o.MaxPerValue > 0 && s.count[value] >= s.o.MaxPerValue {
		return false
	}
	if s.count[value] > 0 && now.Sub(s.newValueAt) < spreadSettle {
		return false
	}
	least := s.count[value]
	for v, at := range s.seen {
		if now.Sub(at) > 2*time.Minute {
			delete(s.seen, v)
			continue
		}
		least = min(least, s.count[v])
	}
	return s.count[value] <= least
}

func (s *service) place(slot int, task, value string, now time.Time) {
	s.slots[slot] = &instance{task: task, value: value, launched: now}
	s.byTask[task] = slot
	s.count[value]++
}

// OfferRescinded needs nothing: offers are answered as they arrive.
func (s *service) OfferRescinded(context.Context, *sdk.Driver, *agorav1.Offer) {}
