package resources

import (
	"errors"
	"testing"
)

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{CPUs: "cpus", Mem: "mem", Disk: "disk", GPUs: "gpus", Kind(9): "kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
	s := KindsOf(CPUs, GPUs)
	if !s.Has(CPUs) || s.Has(Mem) || !s.Has(GPUs) || s.String() != "{cpus,gpus}" {
		t.Errorf("KindSet = %v", s)
	}
	if AllScalars.String() != "{cpus,mem,disk,gpus}" {
		t.Errorf("AllScalars = %v", AllScalars)
	}
}

func TestResourcesArithmetic(t *testing.T) {
	p := MustParse
	tests := []struct {
		name     string
		a, b     string
		sum      string
		diff     string // "" with diffErr means an error is expected
		diffErr  bool
		contains bool
	}{
		{"empty", "", "", "", "", false, true},
		{"scalars", "cpus:2;mem:1Gi", "cpus:0.5;mem:512Mi", "cpus:2.5;mem:1536Mi", "cpus:1.5;mem:512Mi", false, true},
		{"ports", "ports:[1-10]", "ports:[3-4]", "ports:[1-10]", "ports:[1-2,5-10]", false, true},
		{"disjoint ports", "ports:[1-2]", "ports:[5-6]", "ports:[1-2,5-6]", "", true, false},
		{"short cpus", "cpus:1", "cpus:1.001", "cpus:2.001", "", true, false},
		{"short gpus", "gpus:1;cpus:4", "gpus:2", "gpus:3;cpus:4", "", true, false},
		{"all kinds", "cpus:4;mem:4Gi;disk:10Gi;gpus:2;ports:[31000-32000]", "cpus:1;mem:1Gi;disk:1Gi;gpus:1;ports:[31000-31000]",
			"cpus:5;mem:5Gi;disk:11Gi;gpus:3;ports:[31000-32000]", "cpus:3;mem:3Gi;disk:9Gi;gpus:1;ports:[31001-32000]", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := p(tc.a), p(tc.b)
			if got := a.Add(b); !got.Equal(p(tc.sum)) {
				t.Errorf("Add = %v, want %v", got, tc.sum)
			}
			if got := b.Add(a); !got.Equal(p(tc.sum)) {
				t.Errorf("Add is not commutative: %v", got)
			}
			got, err := a.Subtract(b)
			if tc.diffErr {
				if err == nil || !errors.Is(err, ErrInsufficient) {
					t.Fatalf("Subtract err = %v, want ErrInsufficient", err)
				}
				var ie *InsufficientError
				if !errors.As(err, &ie) {
					t.Fatalf("Subtract err %T is not *InsufficientError", err)
				}
				if !got.IsEmpty() {
					t.Errorf("failed Subtract returned %v, want zero value", got)
				}
			} else {
				if err != nil {
					t.Fatalf("Subtract: %v", err)
				}
				if !got.Equal(p(tc.diff)) {
					t.Errorf("Subtract = %v, want %v", got, tc.diff)
				}
				if back := got.Add(b); !back.Equal(a) {
					t.Errorf("(a-b)+b = %v, want %v", back, a)
				}
			}
			if a.Contains(b) != tc.contains || a.Fits(b) != tc.contains {
				t.Errorf("Contains/Fits = %v/%v, want %v", a.Contains(b), a.Fits(b), tc.contains)
			}
		})
	}
}

func TestInsufficientErrorSaysWhat(t *testing.T) {
	_, err := MustParse("cpus:1;mem:1Gi").Subtract(MustParse("mem:2Gi"))
	if err == nil || err.Error() != "resources: insufficient mem: need 2Gi, have 1Gi" {
		t.Errorf("err = %v", err)
	}
	_, err = MustParse("ports:[1-5]").Subtract(MustParse("ports:[4-7]"))
	if err == nil || err.Error() != "resources: insufficient ports: [6-7] are not available" {
		t.Errorf("err = %v", err)
	}
}

func TestResourcesPredicates(t *testing.T) {
	var zero Resources
	if !zero.IsEmpty() || !zero.Equal(Resources{}) || zero.String() != "" {
		t.Error("zero value is not empty")
	}
	if MustParse("ports:[1-1]").IsEmpty() || MustParse("gpus:1").IsEmpty() {
		t.Error("non-empty reported empty")
	}
	a := MustParse("cpus:1;ports:[1-3]")
	if a.Equal(MustParse("cpus:1;ports:[1-4]")) || a.Equal(MustParse("cpus:1.001;ports:[1-3]")) || !a.Equal(MustParse("ports:[1-3];cpus:1")) {
		t.Error("Equal is wrong")
	}
	if !MustParse("cpus:4").Contains(MustParse("cpus:4")) || MustParse("cpus:4").Contains(MustParse("ports:[1-1]")) {
		t.Error("Contains is wrong")
	}
	if !MustParse("cpus:4").ScalarsContain(MustParse("cpus:4;ports:[1-1]")) {
		t.Error("ScalarsContain must ignore ports")
	}
	if got := MustParse("cpus:4;mem:1Gi;ports:[1-10]").Min(MustParse("cpus:2;mem:2Gi;ports:[5-20]")); !got.Equal(MustParse("cpus:2;mem:1Gi;ports:[5-10]")) {
		t.Errorf("Min = %v", got)
	}
	if got := Scalars(1500, GiB, 0, 1); !got.Equal(MustParse("cpus:1.5;mem:1Gi;gpus:1")) || got.Get(CPUs) != 1500 {
		t.Errorf("Scalars = %v", got)
	}
	if got := a.With(GPUs, 2).WithPorts(nil).ScalarsOnly(); !got.Equal(MustParse("cpus:1;gpus:2")) {
		t.Errorf("With/WithPorts = %v", got)
	}
}

func TestValidate(t *testing.T) {
	bad := []Resources{
		Scalars(-1, 0, 0, 0),
		Scalars(0, MaxScalar+1, 0, 0),
		{Ports: rs(5, 1)},
		{Ports: rs(1, 2, 3, 4)},
	}
	for _, r := range bad {
		if err := r.Validate(); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%#v) = %v, want ErrInvalid", r, err)
		}
	}
	if err := Scalars(-1, 0, 0, 0).Validate(); err.Error() != "resources: cpus is negative (-1); amounts must be >= 0" {
		t.Errorf("message = %v", err)
	}
	if err := MustParse("cpus:1;ports:[1-2,4-4]").Validate(); err != nil {
		t.Error(err)
	}
}

func TestAddSharesWithoutModifying(t *testing.T) {
	a := MustParse("ports:[1-5]")
	b := Resources{}.Add(a)
	c := b.Add(MustParse("ports:[10-12]"))
	if !a.Equal(MustParse("ports:[1-5]")) || !b.Equal(a) || !c.Equal(MustParse("ports:[1-5,10-12]")) {
		t.Errorf("a=%v b=%v c=%v", a, b, c)
	}
}
