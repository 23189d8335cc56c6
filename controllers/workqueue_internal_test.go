package controllers

import (
	"context"
	"sync"
	"testing"
	"time"
)

// The write queue serves Assignment writes, then the critical lane, but
// never starves the others: the head of a lane below the critical one that
// waited laneMaxWait goes first.
func TestWorkQueueLanes(t *testing.T) {
	q := &workQueue{}
	q.cond = sync.NewCond(&q.mu)
	var got []string
	mk := func(name string) job {
		return func(context.Context) msg { got = append(got, name); return nil }
	}
	q.push(laneBackground, mk("delete"))
	q.push(laneOffers, mk("offer"))
	q.push(laneCritical, mk("bind"))
	q.push(laneCritical, mk("settle"))
	for range 4 {
		j, ok := q.pop()
		if !ok {
			t.Fatal("closed")
		}
		j(context.Background())
	}
	want := []string{"bind", "settle", "offer", "delete"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}

	got = nil
	q.push(laneBackground, mk("old delete"))
	q.lanes[laneBackground][0].at = time.Now().Add(-2 * laneMaxWait)
	q.push(laneCritical, mk("bind"))
	j, _ := q.pop()
	j(context.Background())
	if got[0] != "old delete" {
		t.Fatalf("a write waiting past laneMaxWait went after %v", got)
	}

	got = nil
	q.push(laneCritical, mk("old bind"))
	q.lanes[laneCritical][0].at = time.Now().Add(-2 * laneMaxWait)
	q.push(laneAssign, mk("assign"))
	for range 2 {
		j, _ := q.pop()
		j(context.Background())
	}
	if got[0] != "assign" {
		t.Fatalf("order %v: an Assignment write must go before binds, however long they waited", got)
	}
	q.close()
	if _, ok := q.pop(); ok {
		t.Fatal("pop after close")
	}
}
