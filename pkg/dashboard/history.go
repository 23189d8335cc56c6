package dashboard

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// history is a fixed ring of share samples (a small, bounded memory cost:
// by default 720 samples, one per 5 s for an hour).
type history struct {
	mu      sync.Mutex
	samples []sample // ring; next is the slot to overwrite
	next    int
	full    bool
}

type sample struct {
	t      time.Time
	shares map[string]float64 // framework "namespace/name" -> dominant share
}

func newHistory(n int) *history { return &history{samples: make([]sample, n)} }

func (h *history) add(t time.Time, shares map[string]float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples[h.next] = sample{t: t, shares: shares}
	h.next = (h.next + 1) % len(h.samples)
	if h.next == 0 {
		h.full = true
	}
}

// ordered returns the samples oldest first.
func (h *history) ordered() []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.full {
		return slices.Clone(h.samples[:h.next])
	}
	return append(slices.Clone(h.samples[h.next:]), h.samples[:h.next]...)
}

// Series is the /api/shares answer: sample times and, per framework, its
// share at each time (null where the framework did not exist).
type Series struct {
	IntervalSeconds float64       `json:"intervalSeconds"`
	Times           []int64       `json:"times"` // Unix milliseconds
	Frameworks      []ShareSeries `json:"frameworks"`
	Omitted         int           `json:"omitted"` // frameworks left out (smaller shares)
}

// ShareSeries is one framework's dominant share over time.
type ShareSeries struct {
	Name   string     `json:"name"`
	Values []*float64 `json:"values"`
}

// series returns the n frameworks with the largest peak share in the
// window, so a framework that was big a while ago stays visible.
func (h *history) series(n int, interval time.Duration) Series {
	ss := h.ordered()
	out := Series{IntervalSeconds: interval.Seconds(), Times: make([]int64, len(ss)), Frameworks: []ShareSeries{}}
	peak := map[string]float64{}
	for i, s := range ss {
		out.Times[i] = s.t.UnixMilli()
		for name, v := range s.shares {
			if p, ok := peak[name]; !ok || v > p {
				peak[name] = v
			}
		}
	}
	names := make([]string, 0, len(peak))
	for name := range peak {
		names = append(names, name)
	}
	slices.SortFunc(names, func(a, b string) int {
		if peak[a] != peak[b] {
			if peak[a] > peak[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	if len(names) > n {
		out.Omitted = len(names) - n
		names = names[:n]
	}
	slices.Sort(names) // stable colours in the chart as ranks change
	for _, name := range names {
		vals := make([]*float64, len(ss))
		for i, s := range ss {
			if v, ok := s.shares[name]; ok {
				vals[i] = &v
			}
		}
		out.Frameworks = append(out.Frameworks, ShareSeries{Name: name, Values: vals})
	}
	return out
}

// parseShare reads the master's decimal share strings ("0.250"); empty or
// malformed ones (a framework the master has not written yet) count as 0.
func parseShare(s string) float64 {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}
