package allocator

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is. Every error the allocator returns
// is an *Error wrapping one of them; a failed call leaves the books as they
// were.
var (
	ErrUnknownAgent     = errors.New("unknown agent")
	ErrUnknownFramework = errors.New("unknown framework")
	// ErrUnknownRole: the role is not known, or the framework is not
	// subscribed to it.
	ErrUnknownRole = errors.New("unknown role")
	// ErrExists: adding an agent or framework that is already there.
	ErrExists = errors.New("already exists")
	// ErrNotAllocated: returning resources that are not allocated to that
	// framework and role on that agent (a double free).
	ErrNotAllocated = errors.New("resources are not allocated")
	// ErrInsufficient: an allocation that does not fit in what the agent has
	// left, or an agent update that would shrink it below what is in use.
	ErrInsufficient = errors.New("insufficient resources")
	// ErrInvalid: malformed input (bad name, negative resources, guarantee
	// above limit, ...).
	ErrInvalid = errors.New("invalid argument")
)

// Error describes a rejected event.
type Error struct {
	Op      string // the method, e.g. "Recover"
	Subject string // what it was about, e.g. `framework "ns/spark"`
	Err     error  // one of the sentinel errors above
	Detail  string // what exactly was wrong and how to fix it
}

func (e *Error) Error() string {
	msg := "allocator: " + e.Op
	if e.Subject != "" {
		msg += " " + e.Subject
	}
	msg += ": " + e.Err.Error()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

func errorf(op, subject string, err error, format string, args ...any) *Error {
	return &Error{Op: op, Subject: subject, Err: err, Detail: fmt.Sprintf(format, args...)}
}

func agentSubject(name string) string { return fmt.Sprintf("agent %q", name) }
func fwSubject(id string) string      { return fmt.Sprintf("framework %q", id) }
func roleSubject(name string) string  { return fmt.Sprintf("role %q", name) }
