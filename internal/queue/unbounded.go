// Package queue holds an unbounded queue in front of a channel, shared by the
// agent's executors and the task runtime: producers (timers, process
// watchers) must never block on a slow consumer, and nothing may be dropped.
package queue

import "sync"

// Unbounded delivers pushed values, in order, on C.
type Unbounded[T any] struct {
	mu     sync.Mutex
	buf    []T
	wake   chan struct{}
	out    chan T
	stop   chan struct{}
	closed bool
}

// New starts a queue; Close stops it.
func New[T any]() *Unbounded[T] {
	q := &Unbounded[T]{wake: make(chan struct{}, 1), out: make(chan T), stop: make(chan struct{})}
	go q.pump()
	return q
}

// Push queues v; it never blocks. Values pushed after Close are dropped.
func (q *Unbounded[T]) Push(v T) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.buf = append(q.buf, v)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// C is the channel values are delivered on; it is closed after Close.
func (q *Unbounded[T]) C() <-chan T { return q.out }

// Close stops delivery and closes C; undelivered values are dropped.
func (q *Unbounded[T]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.stop)
	}
}

func (q *Unbounded[T]) pump() {
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.buf) == 0 {
			q.buf = nil // let a burst's backing array go
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-q.stop:
				return
			}
		}
		v := q.buf[0]
		q.buf = q.buf[1:]
		q.mu.Unlock()
		select {
		case q.out <- v:
		case <-q.stop:
			return
		}
	}
}
