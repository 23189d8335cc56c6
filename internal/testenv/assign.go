package testenv

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Bind plays the master's binding of task to its spec.agentName: its
// entry in the agent's Assignment, with the bind's time, is the bind.
func (e *Env) Bind(t testing.TB, task *agorav1.Task) {
	t.Helper()
	e.BindAs(t, task, "")
}

// BindAs binds task as Bind does, on an offer of role.
func (e *Env) BindAs(t testing.TB, task *agorav1.Task, role string) {
	t.Helper()
	if task.UID == "" {
		t.Fatalf("task %s has no UID: create it first", task.Name)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	entry := agorav1.AssignedTask{Namespace: task.Namespace, Name: task.Name, UID: task.UID, BindTime: &now, Role: role}
	e.UpdateAssignment(t, task.Spec.AgentName, func(s *agorav1.AssignmentSpec) {
		s.Tasks = append(s.Tasks, entry)
	})
}

// SetAssigned changes the Assignment entry of task (to set kill or lost,
// as the master does).
func (e *Env) SetAssigned(t testing.TB, task *agorav1.Task, f func(*agorav1.AssignedTask)) {
	t.Helper()
	e.UpdateAssignment(t, task.Spec.AgentName, func(s *agorav1.AssignmentSpec) {
		for i := range s.Tasks {
			if s.Tasks[i].UID == task.UID {
				f(&s.Tasks[i])
				return
			}
		}
		t.Fatalf("task %s is not in the Assignment of %s", task.Name, task.Spec.AgentName)
	})
}

// UpdateAssignment applies f to the Assignment named agent, creating it if
// there is none, and retries conflicts as the master does.
func (e *Env) UpdateAssignment(t testing.TB, agent string, f func(*agorav1.AssignmentSpec)) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		var asn agorav1.Assignment
		err := e.Client.Get(ctx, types.NamespacedName{Name: agent}, &asn)
		switch {
		case apierrors.IsNotFound(err):
			asn = agorav1.Assignment{ObjectMeta: metav1.ObjectMeta{Name: agent}}
			f(&asn.Spec)
			err = e.Client.Create(ctx, &asn)
		case err == nil:
			f(&asn.Spec)
			err = e.Client.Update(ctx, &asn) // conditioned on its resourceVersion
		}
		if err == nil {
			return
		}
		if i > 20 || !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) {
			t.Fatalf("writing the Assignment of %s: %v", agent, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// UpdateStatus updates a task's status as the master would, retrying
// conflicts.
func (e *Env) UpdateStatus(t testing.TB, task *agorav1.Task, f func(*agorav1.TaskStatus)) {
	t.Helper()
	ctx := context.Background()
	for i := 0; ; i++ {
		var cur agorav1.Task
		if err := e.Client.Get(ctx, client.ObjectKeyFromObject(task), &cur); err != nil {
			t.Fatal(err)
		}
		f(&cur.Status)
		err := e.Client.Status().Update(ctx, &cur)
		if err == nil {
			return
		}
		if i > 20 || !apierrors.IsConflict(err) {
			t.Fatalf("updating status of %s: %v", task.Name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
