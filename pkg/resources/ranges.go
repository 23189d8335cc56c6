package resources

import (
	"slices"
	"strings"
)

// Range is an inclusive range of values, e.g. ports 31000-31005.
type Range struct{ Begin, End uint32 }

// Count returns how many values the range holds.
func (r Range) Count() uint64 { return uint64(r.End) - uint64(r.Begin) + 1 }

// Ranges is a set of values kept canonical: sorted by Begin, disjoint, and
// with adjacent ranges merged, so that equal sets have equal slices.
//
// Ranges values are never modified in place; operations return new slices
// (or one of their inputs unchanged), so sharing a Ranges is safe. The
// operations are linear merges with at most one allocation each because
// they sit on the allocator's hot path.
type Ranges []Range

// NewRanges returns the canonical form of rs. It fails if some range has
// Begin > End.
func NewRanges(rs ...Range) (Ranges, error) {
	for _, r := range rs {
		if r.Begin > r.End {
			return nil, &RangeError{Range: r, Reason: "begin is after end"}
		}
	}
	if len(rs) == 0 {
		return nil, nil
	}
	out := make(Ranges, len(rs))
	copy(out, rs)
	slices.SortFunc(out, func(a, b Range) int {
		switch {
		case a.Begin < b.Begin:
			return -1
		case a.Begin > b.Begin:
			return 1
		}
		return 0
	})
	n := 0
	for _, r := range out[1:] {
		last := &out[n]
		// uint64 so that End = MaxUint32 cannot wrap.
		if uint64(r.Begin) <= uint64(last.End)+1 {
			if r.End > last.End {
				last.End = r.End
			}
			continue
		}
		n++
		out[n] = r
	}
	return out[:n+1], nil
}

// Validate reports whether rs is canonical (what NewRanges returns).
func (rs Ranges) Validate() error {
	for i, r := range rs {
		if r.Begin > r.End {
			return &RangeError{Range: r, Reason: "begin is after end"}
		}
		if i > 0 && uint64(r.Begin) <= uint64(rs[i-1].End)+1 {
			return &RangeError{Range: r, Reason: "ranges must be sorted, disjoint and not adjacent (use NewRanges)"}
		}
	}
	return nil
}

// Count returns how many values the set holds.
func (rs Ranges) Count() uint64 {
	var n uint64
	for _, r := range rs {
		n += r.Count()
	}
	return n
}

// Equal reports whether both sets hold the same values.
func (rs Ranges) Equal(o Ranges) bool {
	if len(rs) != len(o) {
		return false
	}
	if len(rs) == 0 || &rs[0] == &o[0] {
		return true // the same slice: common, as values are shared, and it spares reading it
	}
	return slices.Equal(rs, o)
}

// Has reports whether v is in the set.
func (rs Ranges) Has(v uint32) bool {
	i, _ := slices.BinarySearchFunc(rs, v, func(r Range, v uint32) int {
		if r.End < v {
			return -1
		}
		if r.Begin > v {
			return 1
		}
		return 0
	})
	return i < len(rs) && rs[i].Begin <= v && v <= rs[i].End
}

// Contains reports whether every value of o is in rs. It does not allocate.
func (rs Ranges) Contains(o Ranges) bool {
	if len(o) == 0 || (len(rs) == len(o) && &rs[0] == &o[0]) {
		return true
	}
	i := 0
	for _, r := range o {
		// Canonical form means r must sit inside a single range of rs.
		for i < len(rs) && rs[i].End < r.Begin {
			i++
		}
		if i == len(rs) || rs[i].Begin > r.Begin || rs[i].End < r.End {
			return false
		}
	}
	return true
}

// Overlaps reports whether the sets share a value. It does not allocate.
func (rs Ranges) Overlaps(o Ranges) bool {
	i, j := 0, 0
	for i < len(rs) && j < len(o) {
		a, b := rs[i], o[j]
		if a.End < b.Begin {
			i++
		} else if b.End < a.Begin {
			j++
		} else {
			return true
		}
	}
	return false
}

// Add returns the union of rs and o.
func (rs Ranges) Add(o Ranges) Ranges {
	if len(o) == 0 {
		return rs
	}
	if len(rs) == 0 {
		return o
	}
	out := make(Ranges, 0, len(rs)+len(o))
	i, j := 0, 0
	for i < len(rs) || j < len(o) {
		var r Range
		if j == len(o) || (i < len(rs) && rs[i].Begin <= o[j].Begin) {
			r = rs[i]
			i++
		} else {
			r = o[j]
			j++
		}
		if n := len(out); n > 0 && uint64(r.Begin) <= uint64(out[n-1].End)+1 {
			if r.End > out[n-1].End {
				out[n-1].End = r.End
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// Subtract returns the values of rs that are not in o (set difference).
// Values of o missing from rs are ignored; Resources.Subtract is the strict
// form that fails instead.
func (rs Ranges) Subtract(o Ranges) Ranges {
	if len(rs) == 0 || len(o) == 0 {
		return rs
	}
	if len(rs) == len(o) && &rs[0] == &o[0] {
		return nil // the same slice: common (a whole offer is taken back), and it spares reading it
	}
	if !rs.Overlaps(o) {
		return rs
	}
	if o.Contains(rs) {
		return nil // common on the allocator's path: everything is taken or returned
	}
	out := make(Ranges, 0, len(rs)+len(o))
	j := 0
	for _, r := range rs {
		cur := r
		keep := true
		for j < len(o) && o[j].End < cur.Begin {
			j++
		}
		for k := j; k < len(o) && o[k].Begin <= cur.End; k++ {
			cut := o[k]
			if cut.Begin > cur.Begin {
				out = append(out, Range{cur.Begin, cut.Begin - 1})
			}
			if cut.End >= cur.End {
				keep = false
				break
			}
			cur.Begin = cut.End + 1
		}
		if keep {
			out = append(out, cur)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Intersect returns the values in both rs and o.
func (rs Ranges) Intersect(o Ranges) Ranges {
	var out Ranges
	i, j := 0, 0
	for i < len(rs) && j < len(o) {
		a, b := rs[i], o[j]
		lo, hi := max(a.Begin, b.Begin), min(a.End, b.End)
		if lo <= hi {
			out = append(out, Range{lo, hi})
		}
		if a.End < b.End {
			i++
		} else {
			j++
		}
	}
	return out
}

// String returns the Mesos text form, e.g. "[31000-31005,31010-31010]".
func (rs Ranges) String() string {
	var b strings.Builder
	b.Write(rs.appendText(nil))
	return b.String()
}

func (rs Ranges) appendText(b []byte) []byte {
	b = append(b, '[')
	for i, r := range rs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUint(b, uint64(r.Begin))
		b = append(b, '-')
		b = appendUint(b, uint64(r.End))
	}
	return append(b, ']')
}
