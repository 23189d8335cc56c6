package resources

import (
	"errors"
	"testing"
)

func rs(pairs ...uint32) Ranges {
	var out Ranges
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Range{pairs[i], pairs[i+1]})
	}
	return out
}

func TestNewRanges(t *testing.T) {
	tests := []struct {
		name string
		in   []Range
		want Ranges
		err  bool
	}{
		{"empty", nil, nil, false},
		{"one", []Range{{1, 5}}, rs(1, 5), false},
		{"sorts", []Range{{10, 12}, {1, 2}}, rs(1, 2, 10, 12), false},
		{"merges overlap", []Range{{1, 5}, {3, 8}}, rs(1, 8), false},
		{"merges adjacent", []Range{{1, 5}, {6, 8}}, rs(1, 8), false},
		{"merges contained", []Range{{1, 10}, {3, 4}}, rs(1, 10), false},
		{"keeps gaps", []Range{{1, 5}, {7, 8}}, rs(1, 5, 7, 8), false},
		{"max value", []Range{{1<<32 - 1, 1<<32 - 1}, {0, 0}}, rs(0, 0, 1<<32-1, 1<<32-1), false},
		{"begin after end", []Range{{5, 4}}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]Range(nil), tc.in...)
			got, err := NewRanges(tc.in...)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if tc.err {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("error %v does not match ErrInvalid", err)
				}
				return
			}
			if !got.Equal(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("result not canonical: %v", err)
			}
			for i := range in {
				if in[i] != tc.in[i] {
					t.Fatal("NewRanges modified its input")
				}
			}
		})
	}
}

func TestRangesValidate(t *testing.T) {
	for _, bad := range []Ranges{rs(5, 4), rs(1, 5, 6, 7), rs(5, 6, 1, 2), rs(1, 5, 3, 9)} {
		if bad.Validate() == nil {
			t.Errorf("%v: Validate accepted a non-canonical set", []Range(bad))
		}
	}
	for _, good := range []Ranges{nil, rs(1, 1), rs(1, 5, 7, 9)} {
		if err := good.Validate(); err != nil {
			t.Errorf("%v: %v", good, err)
		}
	}
}

func TestRangesOps(t *testing.T) {
	tests := []struct {
		name              string
		a, b              Ranges
		union, diff, both Ranges
		contains, overlap bool
	}{
		{"both empty", nil, nil, nil, nil, nil, true, false},
		{"b empty", rs(1, 5), nil, rs(1, 5), rs(1, 5), nil, true, false},
		{"a empty", nil, rs(1, 5), rs(1, 5), nil, nil, false, false},
		{"equal", rs(1, 5), rs(1, 5), rs(1, 5), nil, rs(1, 5), true, true},
		{"inside", rs(1, 10), rs(3, 4), rs(1, 10), rs(1, 2, 5, 10), rs(3, 4), true, true},
		{"at start", rs(1, 10), rs(1, 4), rs(1, 10), rs(5, 10), rs(1, 4), true, true},
		{"at end", rs(1, 10), rs(7, 10), rs(1, 10), rs(1, 6), rs(7, 10), true, true},
		{"disjoint", rs(1, 3), rs(10, 12), rs(1, 3, 10, 12), rs(1, 3), nil, false, false},
		{"adjacent", rs(1, 3), rs(4, 6), rs(1, 6), rs(1, 3), nil, false, false},
		{"partial overlap", rs(1, 5), rs(4, 8), rs(1, 8), rs(1, 3), rs(4, 5), false, true},
		{"spanning gap", rs(1, 3, 7, 9), rs(2, 8), rs(1, 9), rs(1, 1, 9, 9), rs(2, 3, 7, 8), false, true},
		{"many cuts", rs(1, 20), rs(2, 2, 4, 5, 10, 10, 20, 20), rs(1, 20), rs(1, 1, 3, 3, 6, 9, 11, 19), rs(2, 2, 4, 5, 10, 10, 20, 20), true, true},
		{"cut beyond", rs(5, 10, 20, 30), rs(0, 25), rs(0, 30), rs(26, 30), rs(5, 10, 20, 25), false, true},
		{"max edge", rs(1<<32-10, 1<<32-1), rs(1<<32-1, 1<<32-1), rs(1<<32-10, 1<<32-1), rs(1<<32-10, 1<<32-2), rs(1<<32-1, 1<<32-1), true, true},
		{"contains in second", rs(1, 2, 10, 20), rs(12, 14), rs(1, 2, 10, 20), rs(1, 2, 10, 11, 15, 20), rs(12, 14), true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Add(tc.b); !got.Equal(tc.union) {
				t.Errorf("Add = %v, want %v", got, tc.union)
			}
			if got := tc.b.Add(tc.a); !got.Equal(tc.union) {
				t.Errorf("Add (swapped) = %v, want %v", got, tc.union)
			}
			if got := tc.a.Subtract(tc.b); !got.Equal(tc.diff) {
				t.Errorf("Subtract = %v, want %v", got, tc.diff)
			}
			if got := tc.a.Intersect(tc.b); !got.Equal(tc.both) {
				t.Errorf("Intersect = %v, want %v", got, tc.both)
			}
			if got := tc.a.Contains(tc.b); got != tc.contains {
				t.Errorf("Contains = %v, want %v", got, tc.contains)
			}
			if got := tc.a.Overlaps(tc.b); got != tc.overlap {
				t.Errorf("Overlaps = %v, want %v", got, tc.overlap)
			}
			if got, want := tc.a.Subtract(tc.b).Count()+tc.a.Intersect(tc.b).Count(), tc.a.Count(); got != want {
				t.Errorf("Count(diff)+Count(intersect) = %d, want Count(a) = %d", got, want)
			}
		})
	}
}

// The same slice on both sides takes the shortcuts that skip reading it.
func TestRangesSameSlice(t *testing.T) {
	a := rs(1, 3, 7, 9)
	if got := a.Subtract(a); got != nil {
		t.Errorf("Subtract(self) = %v, want nil", got)
	}
	if !a.Contains(a) || !a.Equal(a) || !a.Overlaps(a) {
		t.Errorf("Contains/Equal/Overlaps(self) = %v/%v/%v, want true", a.Contains(a), a.Equal(a), a.Overlaps(a))
	}
	if got := a.Subtract(a[:1]); !got.Equal(rs(7, 9)) {
		t.Errorf("Subtract(prefix of self) = %v, want [7-9]", got)
	}
}

func TestRangesCountHasString(t *testing.T) {
	r := rs(31000, 31005, 31010, 31010)
	if r.Count() != 7 {
		t.Errorf("Count = %d, want 7", r.Count())
	}
	if got := rs(0, 1<<32-1).Count(); got != 1<<32 {
		t.Errorf("Count of the full range = %d, want 2^32", got)
	}
	for v, want := range map[uint32]bool{30999: false, 31000: true, 31005: true, 31006: false, 31010: true, 31011: false} {
		if r.Has(v) != want {
			t.Errorf("Has(%d) = %v, want %v", v, !want, want)
		}
	}
	if got := r.String(); got != "[31000-31005,31010-31010]" {
		t.Errorf("String = %q", got)
	}
	if got := Ranges(nil).String(); got != "[]" {
		t.Errorf("empty String = %q", got)
	}
}

func TestRangesDoNotModifyInputs(t *testing.T) {
	a, b := rs(1, 10, 20, 30), rs(5, 6, 25, 40)
	ac, bc := append(Ranges(nil), a...), append(Ranges(nil), b...)
	_ = a.Add(b)
	_ = a.Subtract(b)
	_ = a.Intersect(b)
	if !a.Equal(ac) || !b.Equal(bc) {
		t.Fatal("an operation modified its inputs")
	}
}

func TestRangesAllocations(t *testing.T) {
	a, b := rs(1, 10, 20, 30, 40, 50), rs(5, 6, 25, 26)
	if n := testing.AllocsPerRun(100, func() { _ = a.Contains(b); _ = a.Overlaps(b); _ = a.Count(); _ = a.Equal(b) }); n != 0 {
		t.Errorf("Contains/Overlaps/Count/Equal allocate %v times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = a.Add(b) }); n > 1 {
		t.Errorf("Add allocates %v times, want at most 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = a.Subtract(b) }); n > 1 {
		t.Errorf("Subtract allocates %v times, want at most 1", n)
	}
}

func BenchmarkRanges(b *testing.B) {
	var free Ranges = rs(31000, 32000)
	for i := uint32(0); i < 16; i++ {
		free = free.Subtract(rs(31000+i*7, 31000+i*7))
	}
	used := rs(31500, 31510)
	b.Run("Contains", func(b *testing.B) {
		for b.Loop() {
			_ = free.Contains(used)
		}
	})
	b.Run("Subtract", func(b *testing.B) {
		for b.Loop() {
			_ = free.Subtract(used)
		}
	})
	b.Run("Add", func(b *testing.B) {
		x := free.Subtract(used)
		for b.Loop() {
			_ = x.Add(used)
		}
	})
}

func TestRangesSharedSlices(t *testing.T) {
	a := rs(1, 5, 10, 12)
	if !a.Equal(a) || !a.Contains(a) || !a[:1].Contains(a[:1]) {
		t.Error("a set must equal and contain itself")
	}
	if a[:1].Equal(a) || a[:1].Contains(a) {
		t.Error("a prefix of a slice is a different set")
	}
	if !a.Contains(a[1:]) || a[1:].Contains(a) {
		t.Error("Contains with overlapping backing arrays")
	}
}
