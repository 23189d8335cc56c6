package agent

import "github.com/agora-sched/agora/internal/queue"

// EventQueue is an unbounded queue in front of an Events channel, for
// Executors: a producer (a timer, a process watcher) must never block on a
// slow agent, and no event may be dropped. NewEventQueue starts one; Push
// never blocks, C delivers, Close stops delivery and closes C.
type EventQueue = queue.Unbounded[Event]

// NewEventQueue starts a queue; Close stops it.
func NewEventQueue() *EventQueue { return queue.New[Event]() }
