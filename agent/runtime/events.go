package runtime

import "sync"

// eventQueue is an unbounded queue in front of the Events channel: a slow
// consumer must never block a watcher (and with it a kill or a checkpoint
// read), and no status may be dropped.
type eventQueue struct {
	mu     sync.Mutex
	buf    []Event
	wake   chan struct{}
	out    chan Event
	closed bool
	stop   chan struct{}
}

func newEventQueue() *eventQueue {
	q := &eventQueue{wake: make(chan struct{}, 1), out: make(chan Event), stop: make(chan struct{})}
	go q.pump()
	return q
}

func (q *eventQueue) push(e Event) {
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

func (q *eventQueue) pump() {
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.buf) == 0 {
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

// close stops delivery; undelivered events are dropped (they are in the
// checkpoints, and Recover reports them to the next Runtime).
func (q *eventQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.stop)
	}
}
