package controllers

import (
	"context"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Each agent learns of its tasks from its Assignment, which only the
// master writes: the tasks bound to the agent, until they end. Listing a
// task there is its bind; no bind is written on the Task (the agent copies
// the entry's bindTime and role with its first status write). The agent
// watches that one object by name, a watch the apiserver indexes; a Task
// watch by spec.agentName would be filtered for every Task write in the
// cluster (docs/design.md, "How an agent learns of its tasks").
//
// Writes are coalesced per agent: one write carries every bind made while
// the previous write for the agent was in flight, and entries of tasks
// that ended leave with the next write rather than costing their own.

// assignSweep is how long an Assignment may keep entries of ended or
// deleted tasks when nothing else makes the master write it.
const assignSweep = 30 * time.Second

// assignState is the master's view of one agent's Assignment.
type assignState struct {
	obj       *agorav1.Assignment                // latest version seen or written; nil: none
	stored    map[types.UID]agorav1.AssignedTask // obj's entries by UID
	writing   bool                               // a write is in flight
	lastWrite time.Time
}

// setStored makes obj the agent's stored list and settles what it binds:
// binds of this master that it lists have landed, and tasks it lists that
// the books hold unbound were bound by another master.
func (e *engine) setStored(agent string, s *assignState, obj *agorav1.Assignment) {
	s.obj, s.stored = obj, nil
	if obj == nil {
		return
	}
	s.stored = make(map[types.UID]agorav1.AssignedTask, len(obj.Spec.Tasks))
	for _, at := range obj.Spec.Tasks {
		s.stored[at.UID] = at
	}
	for _, t := range e.agentTasks[agent] {
		if _, ok := s.stored[types.UID(t.uid)]; !ok {
			continue
		}
		switch {
		case t.binding:
			e.bindLanded(t)
		case !t.bound:
			e.syncTask(t)
		}
	}
}

// storedEntry is the task's entry in its agent's stored Assignment.
func (e *engine) storedEntry(t *taskState) (agorav1.AssignedTask, bool) {
	s := e.assigns[t.agent]
	if s == nil {
		return agorav1.AssignedTask{}, false
	}
	at, ok := s.stored[types.UID(t.uid)]
	return at, ok
}

// boundInAPI: the API says the task is bound, by its stored entry or by
// the bindTime on the Task (written by the agent, or by older masters).
// It takes the bind's time and role for the books.
func (e *engine) boundInAPI(t *taskState) bool {
	at, listed := e.storedEntry(t)
	if listed && t.bindRV == "" {
		t.bindRV = at.ResourceVersion
	}
	if bt := t.obj.Status.BindTime; bt != nil {
		t.bind = bt
		return true
	}
	if listed {
		t.bind = at.BindTime
		if t.role == "" {
			t.role = at.Role
		}
	}
	return listed
}

// assignEntry is what the books want listed for one task.
type assignEntry struct{ in, kill, lost bool }

// markAssign asks for the agent's list to be compared with the books at
// the next flush.
func (e *engine) markAssign(agent string) { e.assignDirty[agent] = struct{}{} }

func (e *engine) assign(agent string) *assignState {
	s := e.assigns[agent]
	if s == nil {
		s = &assignState{}
		e.assigns[agent] = s
	}
	return s
}

// wantedEntry: a task is listed from its bind until it ends (LOST and
// UNREACHABLE stay: the task may still run and come back).
func wantedEntry(t *taskState) assignEntry {
	if !t.bound || terminal(t.state) {
		return assignEntry{}
	}
	lost := t.state == agorav1.TaskLost || t.state == agorav1.TaskUnreachable
	return assignEntry{in: true, kill: t.obj.Spec.Kill, lost: lost}
}

// noteAssignment marks the task's agent for a write when what it lists
// for the task changes. A task whose end the agent wrote leaves lazily:
// the agent already knows. An end the master wrote (TASK_GONE of a removed
// agent, say) is unlisted at once, so that an agent still running the task
// reads it and stops it.
func (e *engine) noteAssignment(t *taskState) {
	want := wantedEntry(t)
	if want == t.listed {
		return
	}
	lazy := !want.in && terminal(t.state) && t.obj.Status.Source != agorav1.SourceMaster
	t.listed = want
	if !lazy {
		e.markAssign(t.agent)
	}
}

// onAssignment takes an informer event or a rebuild item.
func (e *engine) onAssignment(obj *agorav1.Assignment, deleted bool) {
	s := e.assign(obj.Name)
	switch {
	case deleted:
		if s.obj != nil && s.obj.UID == obj.UID {
			e.setStored(obj.Name, s, nil)
			e.markAssign(obj.Name)
		}
	case s.obj == nil || newer(obj.ResourceVersion, s.obj.ResourceVersion):
		e.setStored(obj.Name, s, obj)
		e.markAssign(obj.Name) // written by someone else (an earlier master): compare
	}
}

// flushAssignments starts a write for every agent whose list should change
// and has no write in flight.
func (e *engine) flushAssignments() {
	for agent := range e.assignDirty {
		s := e.assign(agent)
		if s.writing {
			continue // its reply flushes again, with what landed meanwhile
		}
		delete(e.assignDirty, agent)
		if _, known := e.agents[agent]; !known {
			continue // removed: nothing reads its list any more
		}
		want := e.assignedTasks(agent)
		if s.obj != nil && slices.EqualFunc(s.obj.Spec.Tasks, want, sameEntry) {
			continue
		}
		if s.obj == nil && len(want) == 0 {
			continue
		}
		s.writing = true
		e.doIn(laneAssign, e.assignJob(agent, s.obj, want, e.bindsIn(want)))
	}
}

// sweepAssignments rewrites lists that kept entries of ended or deleted
// tasks for assignSweep, so that a quiet agent's list shrinks too.
func (e *engine) sweepAssignments(now time.Time) {
	if now.Sub(e.lastAssignSweep) < assignSweep/3 {
		return
	}
	e.lastAssignSweep = now
	for agent, s := range e.assigns {
		if _, dirty := e.assignDirty[agent]; s.obj == nil || dirty || now.Sub(s.lastWrite) < assignSweep {
			continue
		}
		for _, at := range s.obj.Spec.Tasks {
			t := e.tasks[key(at.Namespace, at.Name)]
			if t == nil || string(at.UID) != t.uid || !t.listed.in {
				e.markAssign(agent)
				break
			}
		}
	}
}

// assignedTasks is the list the books want for an agent, sorted by UID.
func (e *engine) assignedTasks(agent string) []agorav1.AssignedTask {
	var out []agorav1.AssignedTask
	for _, t := range e.agentTasks[agent] {
		if w := wantedEntry(t); w.in {
			out = append(out, agorav1.AssignedTask{Namespace: t.ns, Name: t.name, UID: types.UID(t.uid),
				BindTime: t.bind, ResourceVersion: t.bindRV, Role: t.role, Kill: w.kill, Lost: w.lost})
		}
	}
	slices.SortFunc(out, func(a, b agorav1.AssignedTask) int { return strings.Compare(string(a.UID), string(b.UID)) })
	return out
}

// sameEntry compares entries as the API stores them (times in seconds).
func sameEntry(a, b agorav1.AssignedTask) bool {
	if (a.BindTime == nil) != (b.BindTime == nil) || (a.BindTime != nil && a.BindTime.Unix() != b.BindTime.Unix()) {
		return false
	}
	a.BindTime, b.BindTime = nil, nil
	return a == b
}

// bindsIn names the tasks whose bind a write of want makes.
func (e *engine) bindsIn(want []agorav1.AssignedTask) []types.NamespacedName {
	var out []types.NamespacedName
	for _, at := range want {
		if t := e.tasks[key(at.Namespace, at.Name)]; t != nil && t.binding && t.uid == string(at.UID) {
			out = append(out, types.NamespacedName{Namespace: at.Namespace, Name: at.Name})
		}
	}
	return out
}

// assignJob creates or updates (conditioned on base's resourceVersion) an
// agent's Assignment. On a conflict it returns the fresh object, and the
// engine decides again on it.
func (e *engine) assignJob(agent string, base *agorav1.Assignment, want []agorav1.AssignedTask, binds []types.NamespacedName) job {
	// Owned by the Agent, so that deleting the Agent collects it; not a
	// controller reference, which would need the right to block the
	// Agent's deletion.
	var owner *metav1.OwnerReference
	if a := e.agents[agent]; a != nil && a.obj != nil {
		owner = &metav1.OwnerReference{APIVersion: agorav1.GroupVersion.String(), Kind: "Agent", Name: agent, UID: a.obj.UID}
	}
	if base != nil {
		base = base.DeepCopy()
	}
	return func(ctx context.Context) msg {
		obj, err := e.writeAssignment(ctx, agent, base, want, owner)
		if err != nil && ctx.Err() != nil {
			return nil
		}
		if h := e.opts.Hooks.AfterBind; err == nil && h != nil {
			for _, b := range binds {
				h(b.Namespace, b.Name)
			}
		}
		if h := e.opts.Hooks.AfterAssign; err == nil && h != nil {
			h(agent, listedKeys(want))
		}
		return func(e *engine) { e.assignmentWritten(agent, obj, err) }
	}
}

func (e *engine) writeAssignment(ctx context.Context, agent string, base *agorav1.Assignment, want []agorav1.AssignedTask, owner *metav1.OwnerReference) (*agorav1.Assignment, error) {
	var err error
	if base == nil {
		obj := &agorav1.Assignment{ObjectMeta: metav1.ObjectMeta{Name: agent}, Spec: agorav1.AssignmentSpec{Tasks: want}}
		if owner != nil {
			obj.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		if err = e.m.client.Create(ctx, obj); err == nil {
			return obj, nil
		}
	} else {
		obj := base.DeepCopy()
		obj.Spec.Tasks = want
		if err = e.m.client.Update(ctx, obj); err == nil {
			return obj, nil
		}
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		fresh := &agorav1.Assignment{}
		gerr := e.m.reader.Get(ctx, client.ObjectKey{Name: agent}, fresh)
		switch {
		case gerr == nil:
			return fresh, err
		case apierrors.IsNotFound(gerr):
			return nil, err
		}
	}
	backoff(ctx, 1) // before the engine tries again
	return base, err
}

// assignmentWritten applies a write's outcome: the object it left (or the
// fresh one after a conflict) becomes the base, and the list is compared
// again at the next flush.
func (e *engine) assignmentWritten(agent string, obj *agorav1.Assignment, err error) {
	s := e.assign(agent)
	s.writing = false
	e.markAssign(agent) // binds that landed meanwhile
	if err == nil {
		s.lastWrite = e.clock.Now()
		assignmentWritesTotal.Inc()
	} else {
		e.markAssign(agent)
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) && !apierrors.IsNotFound(err) {
			e.log.Error(err, "writing assignment", "agent", agent)
		}
	}
	switch {
	case obj == nil:
		e.setStored(agent, s, nil)
	case s.obj == nil || newer(obj.ResourceVersion, s.obj.ResourceVersion):
		e.setStored(agent, s, obj)
	}
}

func (e *engine) addAgentTask(t *taskState) {
	m := e.agentTasks[t.agent]
	if m == nil {
		m = map[string]*taskState{}
		e.agentTasks[t.agent] = m
	}
	m[t.key] = t
}

// removeAgentTask drops a deleted task; if its agent still lists it as
// live, the agent must hear of it (it finds the Task gone and kills it).
func (e *engine) removeAgentTask(t *taskState) {
	if m := e.agentTasks[t.agent]; m != nil && m[t.key] == t {
		delete(m, t.key)
		if len(m) == 0 {
			delete(e.agentTasks, t.agent)
		}
	}
	if t.listed.in {
		e.markAssign(t.agent)
	}
}

func listedKeys(tasks []agorav1.AssignedTask) []string {
	out := make([]string, len(tasks))
	for i, t := range tasks {
		out[i] = key(t.Namespace, t.Name)
	}
	return out
}
