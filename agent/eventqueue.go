package agent

import "sync"

// EventQueue is an unbounded queue in front of an Events channel, for
// Executors: a producer (a timer, a process watcher) must never block on a
// slow agent, and no event may be dropped.
type EventQueue struct {
	mu     sync.Mutex
	buf    []Event
	wake   chan struct{}
	out    chan Event
	stop   chan struct{}
	closed bool
}

// NewEventQueue starts a queue; Close stops it.
func NewEventQueue() *EventQueue {
	q := &EventQueue{wake: make(chan struct{}, 1), out: make(chan Event), stop: make(chan struct{})}
	go q.pump()
	return q
}

// Push queues an event; it never blocks. Events pushed after Close are dropped.
func (q *EventQueue) Push(e Event) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.buf = append(q.buf, e)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// C is the channel events are delivered on; it is closed by Close.
func (q *EventQueue) C() <-chan Event { return q.out }

// Close stops delivery and closes C.
func (q *EventQueue) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.stop)
	}
}

func (q *EventQueue) pump() {
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
		e := q.buf[0]
		q.buf = q.buf[1:]
		q.mu.Unlock()
		select {
		case q.out <- e:
		case <-q.stop:
			return
		}
	}
}
