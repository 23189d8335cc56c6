package queue

import (
	"testing"
	"time"
)

// Push never blocks, values arrive in order, and Close closes C.
func TestUnboundedOrderAndClose(t *testing.T) {
	q := New[int]()
	const n = 10000
	for i := 0; i < n; i++ {
		q.Push(i) // nobody reads yet: must not block
	}
	for i := 0; i < n; i++ {
		select {
		case v := <-q.C():
			if v != i {
				t.Fatalf("got %d, want %d", v, i)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("value %d never arrived", i)
		}
	}
	q.Close()
	q.Push(-1) // dropped after Close
	select {
	case v, ok := <-q.C():
		if ok {
			t.Fatalf("got %d after Close, want a closed channel", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("C not closed after Close")
	}
}
