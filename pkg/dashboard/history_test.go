package dashboard

import (
	"fmt"
	"testing"
	"time"
)

// TestHistoryRing: the ring keeps the newest samples in order, and series
// keeps the frameworks with the largest peak share, with gaps as nil.
func TestHistoryRing(t *testing.T) {
	h := newHistory(3)
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		shares := map[string]float64{"a/big": 0.1 * float64(i), "a/small": 0.01}
		if i == 3 {
			shares["a/late"] = 0.2
		}
		h.add(t0.Add(time.Duration(i)*time.Second), shares)
	}
	s := h.series(2, 5*time.Second)
	if fmt.Sprint(s.Times) != fmt.Sprint([]int64{1002000, 1003000, 1004000}) {
		t.Fatalf("times %v: want the 3 newest, oldest first", s.Times)
	}
	if s.Omitted != 1 || len(s.Frameworks) != 2 || s.Frameworks[0].Name != "a/big" || s.Frameworks[1].Name != "a/late" {
		t.Fatalf("series %+v: want a/big and a/late (largest peaks), a/small omitted", s)
	}
	late := s.Frameworks[1].Values
	if late[0] != nil || late[1] == nil || *late[1] != 0.2 || late[2] != nil {
		t.Errorf("a/late values %v: want a gap before and after its one sample", late)
	}
	if v := s.Frameworks[0].Values[2]; v == nil || *v < 0.39 || *v > 0.41 {
		t.Errorf("a/big latest %v, want 0.4", v)
	}
	if s.IntervalSeconds != 5 {
		t.Errorf("interval %v", s.IntervalSeconds)
	}
	if e := newHistory(4).series(10, time.Second); len(e.Times) != 0 || e.Frameworks == nil {
		t.Errorf("empty history: %+v (frameworks must encode as [], not null)", e)
	}
}

func TestParseShare(t *testing.T) {
	for in, want := range map[string]float64{"0.250": 0.25, "": 0, "x": 0, "-1": 0, "1.000": 1} {
		if got := parseShare(in); got != want {
			t.Errorf("parseShare(%q) = %v, want %v", in, got, want)
		}
	}
}
