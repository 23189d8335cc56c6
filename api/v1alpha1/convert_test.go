package v1alpha1

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/agora-sched/agora/pkg/resources"
)

func q(s string) *resource.Quantity { v := resource.MustParse(s); return &v }

func TestModelRoundTrip(t *testing.T) {
	in := Resources{CPUs: q("1.5"), Mem: q("512Mi"), Disk: q("1Gi"), GPUs: q("2"),
		Ports: []PortRange{{Begin: 31000, End: 31009}, {Begin: 31010, End: 31020}}}
	m, err := in.Model()
	if err != nil {
		t.Fatal(err)
	}
	want := resources.Scalars(1500, 512<<20, 1<<30, 2)
	if m.Scalars != want.Scalars {
		t.Errorf("scalars = %v, want %v", m.Scalars, want.Scalars)
	}
	// Adjacent ranges are merged into the canonical form.
	if len(m.Ports) != 1 || m.Ports[0] != (resources.Range{Begin: 31000, End: 31020}) {
		t.Errorf("ports = %v, want [31000-31020]", m.Ports)
	}
	back := FromModel(m)
	if back.CPUs.Cmp(*in.CPUs) != 0 || back.Mem.Cmp(*in.Mem) != 0 || back.GPUs.Cmp(*in.GPUs) != 0 {
		t.Errorf("round trip = %+v", back)
	}
}

func TestModelRejectsBadPorts(t *testing.T) {
	if _, err := (Resources{Ports: []PortRange{{Begin: 10, End: 5}}}).Model(); err == nil {
		t.Error("reversed range accepted")
	}
	if _, err := (Resources{Mem: q("-1")}).Model(); err == nil {
		t.Error("negative mem accepted")
	}
}
