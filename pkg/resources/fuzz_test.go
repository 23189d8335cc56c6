package resources

import (
	"encoding/binary"
	"testing"
)

// fromBytes builds a valid Resources from fuzz input.
func fromBytes(b []byte) Resources {
	var r Resources
	next := func() uint64 {
		var buf [8]byte
		n := copy(buf[:], b)
		b = b[n:]
		return binary.LittleEndian.Uint64(buf[:])
	}
	for k := range r.Scalars {
		r.Scalars[k] = int64(next() % uint64(MaxScalar/4))
	}
	var ranges []Range
	for range next() % 6 {
		v := next()
		lo := uint32(v)
		ranges = append(ranges, Range{lo, lo + uint32(v>>32)%200})
		if ranges[len(ranges)-1].End < lo { // wrapped
			ranges[len(ranges)-1].End = 1<<32 - 1
		}
	}
	r.Ports, _ = NewRanges(ranges...)
	return r
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "cpus:2;mem:1024;ports:[31000-32000]", "cpus:1.5;mem:512Mi;disk:1Gi;gpus:1;ports:[31000-31005,31010-31010]",
		"mem:1.5Gi", "mem:3B", "ports:[1-2,3-4]", "cpus:0.001", "gpus:1.0", "disk:7Ei"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("Parse(%q) returned invalid %#v: %v", s, r, err)
		}
		text := r.String()
		back, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(String()) of %q: %q: %v", s, text, err)
		}
		if !back.Equal(r) {
			t.Fatalf("round trip of %q: %q parsed as %v", s, text, back)
		}
		if back.String() != text {
			t.Fatalf("String is not stable: %q then %q", text, back.String())
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3})
	f.Add([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := fromBytes(b)
		back, err := Parse(r.String())
		if err != nil || !back.Equal(r) {
			t.Fatalf("Parse(%q) = %v, %v; want %#v", r.String(), back, err, r)
		}
	})
}

func FuzzArithmetic(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{4, 5, 6})
	f.Add([]byte("some fairly long input to fill ports ....."), []byte("and another one, different ...................."))
	f.Fuzz(func(t *testing.T, ab, bb []byte) {
		a, b := fromBytes(ab), fromBytes(bb)
		sum := a.Add(b)
		if err := sum.Validate(); err != nil {
			t.Fatalf("a+b invalid: %v", err)
		}
		if !sum.Contains(a) || !sum.Contains(b) {
			t.Fatalf("a+b does not contain a and b")
		}
		if !sum.Equal(b.Add(a)) {
			t.Fatalf("Add is not commutative")
		}
		// Ports are a set: (a+b)-b == a only holds when they are disjoint.
		diff, err := sum.Subtract(b)
		if err != nil {
			t.Fatalf("(a+b)-b: %v", err)
		}
		if want := a.WithPorts(a.Ports.Subtract(b.Ports)); !diff.Equal(want) {
			t.Fatalf("(a+b)-b = %v, want %v", diff, want)
		}
		if !a.Ports.Overlaps(b.Ports) && !diff.Equal(a) {
			t.Fatalf("(a+b)-b = %v, want a = %v", diff, a)
		}
		// Contains agrees with Subtract.
		d, err := a.Subtract(b)
		if a.Contains(b) != (err == nil) {
			t.Fatalf("Contains = %v but Subtract err = %v", a.Contains(b), err)
		}
		if err == nil {
			if !d.Add(b).Equal(a) || d.Validate() != nil {
				t.Fatalf("(a-b)+b != a")
			}
		} else if !d.IsEmpty() {
			t.Fatalf("failed Subtract returned %v", d)
		}
		if a.Contains(b) && b.Contains(a) != a.Equal(b) {
			t.Fatalf("mutual containment disagrees with Equal")
		}
		// Set laws on ports.
		p, q := a.Ports, b.Ports
		if !p.Subtract(q).Add(p.Intersect(q)).Equal(p) {
			t.Fatalf("(p-q) + (p&q) != p for %v %v", p, q)
		}
		if p.Subtract(q).Overlaps(q) || p.Overlaps(q) != (len(p.Intersect(q)) > 0) {
			t.Fatalf("Overlaps disagrees with Subtract/Intersect")
		}
		if p.Add(q).Count() != p.Count()+q.Count()-p.Intersect(q).Count() {
			t.Fatalf("Count of union is wrong")
		}
	})
}
