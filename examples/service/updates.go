package service

import (
	"context"
	"fmt"
	"strconv"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/sdk"
)

// TaskUpdate tracks instances: it adopts a running task of a free slot,
// kills extra ones (a lost task that came back after it was replaced),
// and frees the slot of an instance that ended or became unreachable.
func (s *service) TaskUpdate(ctx context.Context, d *sdk.Driver, t *agorav1.Task) {
	state := t.Status.State
	if state == "" {
		return
	}
	slot, known := s.byTask[t.Name]
	if !known {
		slot = s.adopt(t)
		if slot < 0 {
			s.discard(ctx, d, t)
			return
		}
	}
	in := s.slots[slot]
	prev := in.state
	in.state = state
	if state == agorav1.TaskRunning && prev != agorav1.TaskRunning {
		s.running++
		fmt.Fprintf(s.o.Out, "service: instance %d running (%s), %d/%d running\n", slot, t.Name, s.running, s.o.Instances)
	}
	if !sdk.IsTerminal(state) && state != agorav1.TaskUnreachable {
		return
	}
	// Ended or unreachable: launch a replacement. An unreachable task that
	// comes back is killed as an extra (Marathon does the same after its
	// unreachable timeout; here the timeout is the agent's).
	if prev == agorav1.TaskRunning {
		s.running--
	}
	delete(s.byTask, t.Name)
	s.count[in.value]--
	if state == agorav1.TaskLost || state == agorav1.TaskUnreachable {
		// Its agent is gone: do not hold the spread waiting for its offers.
		delete(s.seen, in.value)
	}
	s.slots[slot] = nil
	s.notBefore[slot] = time.Now()
	if state == agorav1.TaskFailed {
		// Back off a crashing command; one that ran a while starts over.
		if time.Since(in.launched) > 10*time.Second || s.backoff[slot] == 0 {
			s.backoff[slot] = time.Second
		} else {
			s.backoff[slot] = min(2*s.backoff[slot], s.o.MaxBackoff)
		}
		s.notBefore[slot] = time.Now().Add(s.backoff[slot])
	}
	fmt.Fprintf(s.o.Out, "service: instance %d %s (%s%s), relaunching; %d/%d running\n",
		slot, state, t.Name, reasonSuffix(t), s.running, s.o.Instances)
	if state != agorav1.TaskLost {
		_ = d.Acknowledge(ctx, t) // UNREACHABLE is refused: it may come back
	}
	s.wantOffers(ctx, d, true)
}

// adopt places a live task of this service in its slot if the slot is
// free; it returns the slot or -1.
func (s *service) adopt(t *agorav1.Task) int {
	if sdk.IsTerminal(t.Status.State) || t.Status.State == agorav1.TaskUnreachable {
		return -1
	}
	slot, err := strconv.Atoi(t.Labels[SlotLabel])
	if err != nil || slot < 0 || slot >= len(s.slots) || s.slots[slot] != nil {
		return -1
	}
	value, ok := t.Annotations[SpreadAnnotation]
	if !ok {
		value = t.Spec.AgentName
	}
	s.place(slot, t.Name, value, t.CreationTimestamp.Time)
	return slot
}

// discard handles a task that is not an instance: it acknowledges ended
// ones and kills live extras (beyond K, or a slot already refilled).
func (s *service) discard(ctx context.Context, d *sdk.Driver, t *agorav1.Task) {
	switch {
	case sdk.IsTerminal(t.Status.State) && t.Status.State != agorav1.TaskLost:
		_ = d.Acknowledge(ctx, t)
	case !sdk.IsTerminal(t.Status.State) && t.Status.State != agorav1.TaskUnreachable && !t.Spec.Kill:
		fmt.Fprintf(s.o.Out, "service: killing extra instance %s\n", t.Name)
		_ = d.Kill(ctx, t.Name)
	}
}

func reasonSuffix(t *agorav1.Task) string {
	if t.Status.Reason == "" {
		return ""
	}
	return ", " + t.Status.Reason
}
