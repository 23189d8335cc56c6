package sdk

import (
	"testing"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/pkg/resources"
)

func TestTakePorts(t *testing.T) {
	avail := resources.Ranges{{Begin: 31000, End: 31001}, {Begin: 31005, End: 31010}}
	got, ok := TakePorts(avail, 3)
	if !ok || got.String() != (resources.Ranges{{Begin: 31000, End: 31001}, {Begin: 31005, End: 31005}}).String() {
		t.Errorf("TakePorts(3) = %v %v", got, ok)
	}
	if _, ok := TakePorts(avail, 9); ok {
		t.Error("9 ports out of 8 must not fit")
	}
	if got, ok := TakePorts(nil, 0); !ok || got != nil {
		t.Errorf("TakePorts(0) = %v %v", got, ok)
	}
}

func TestPoolPacks(t *testing.T) {
	res := b.Res("1", "1Gi")
	res.Ports = []agorav1.PortRange{{Begin: 31000, End: 31002}}
	p, err := NewPool(b.Offer("ns", "o", "fw", "n").Resources(res).Obj())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for p.Take(b.Res("300m", "100Mi")) {
		n++
	}
	if n != 3 {
		t.Errorf("packed %d tasks of 300m into 1 cpu, want 3", n)
	}
	r, ok := p.TakeWithPorts(b.Res("100m", ""), 2)
	if !ok || len(Ports(r)) != 2 {
		t.Fatalf("TakeWithPorts = %v %v", r, ok)
	}
	if _, ok := p.TakeWithPorts(b.Res("", "1Mi"), 2); ok {
		t.Error("2 more ports out of 1 left must not fit")
	}
	if p.Fits(b.Res("200m", "")) {
		t.Error("200m must not fit in the 100m left")
	}
}

func TestAttribute(t *testing.T) {
	rack := "r1"
	o := b.Offer("ns", "o", "fw", "host-a").Obj()
	o.Spec.Attributes = []agorav1.Attribute{{Name: "rack", Text: &rack}, {Name: "level", Scalar: b.Q("3")},
		{Name: "slots", Ranges: []agorav1.PortRange{{Begin: 1, End: 4}}}}
	for name, want := range map[string]string{"rack": "r1", "level": "3", "slots": "[1-4]", "hostname": "host-a"} {
		if got, ok := Attribute(o, name); !ok || got != want {
			t.Errorf("Attribute(%s) = %q %v, want %q", name, got, ok, want)
		}
	}
	if _, ok := Attribute(o, "zone"); ok {
		t.Error("a missing attribute was found")
	}
}

func TestIsTerminal(t *testing.T) {
	for _, s := range []agorav1.TaskState{agorav1.TaskFinished, agorav1.TaskFailed, agorav1.TaskLost, agorav1.TaskDropped} {
		if !IsTerminal(s) {
			t.Errorf("%s must be terminal", s)
		}
	}
	for _, s := range []agorav1.TaskState{"", agorav1.TaskRunning, agorav1.TaskUnreachable, agorav1.TaskKilling} {
		if IsTerminal(s) {
			t.Errorf("%s must not be terminal", s)
		}
	}
}
