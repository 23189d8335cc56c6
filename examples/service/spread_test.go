package service

import (
	"testing"
	"time"
)

func newTestService(k int, o Options) *service {
	o.Instances = k
	return &service{o: o, slots: make([]*instance, k), notBefore: make([]time.Time, k), backoff: make([]time.Duration, k),
		byTask: map[string]int{}, count: map[string]int{}, seen: map[string]time.Time{}}
}

func TestEvenSpread(t *testing.T) {
	now := time.Now()
	s := newTestService(4, Options{})
	s.seen["a"], s.seen["b"] = now, now
	s.place(0, "t0", "a", now)
	if s.evenlySpread("a", now) {
		t.Error("a second instance on a while b has none")
	}
	if !s.evenlySpread("b", now) {
		t.Error("b is the least used value")
	}
	s.place(1, "t1", "b", now)
	if !s.evenlySpread("a", now) {
		t.Error("a and b are even: either may take the next")
	}
	// A value not offered for two minutes no longer holds the others back.
	s.seen["c"] = now.Add(-3 * time.Minute)
	if !s.evenlySpread("a", now) {
		t.Error("a stale value blocked the spread")
	}
	if _, ok := s.seen["c"]; ok {
		t.Error("the stale value was not forgotten")
	}
}

func TestMaxPerValue(t *testing.T) {
	now := time.Now()
	s := newTestService(3, Options{MaxPerValue: 1})
	s.seen["a"] = now
	if !s.evenlySpread("a", now) {
		t.Fatal("the first instance on a must be allowed")
	}
	s.place(0, "t0", "a", now)
	if s.evenlySpread("a", now) {
		t.Error("MaxPerValue 1 allowed a second instance on a")
	}
}

// A second instance on a value waits until no new value has turned up for
// spreadSettle: in a busy cluster another agent may be offered only later.
func TestSpreadWaitsForLateValues(t *testing.T) {
	now := time.Now()
	s := newTestService(3, Options{})
	s.seen["a"], s.newValueAt = now, now
	s.place(0, "t0", "a", now)
	if s.evenlySpread("a", now.Add(time.Second)) {
		t.Error("a second instance on a one second after a value first turned up")
	}
	if !s.evenlySpread("a", now.Add(spreadSettle)) {
		t.Error("no new value for spreadSettle, yet a may not take a second instance")
	}
	s.seen["b"], s.newValueAt = now.Add(spreadSettle), now.Add(spreadSettle)
	if !s.evenlySpread("b", now.Add(spreadSettle)) {
		t.Error("the new value b may not take its first instance")
	}
}
