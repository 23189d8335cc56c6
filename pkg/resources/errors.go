package resources

import (
	"errors"
	"fmt"
)

// ErrInsufficient is matched (with errors.Is) by the error Subtract returns
// when the subtrahend is not contained in the receiver.
var ErrInsufficient = errors.New("resources: insufficient resources")

// ErrInvalid is matched by errors about malformed values: negative or too
// large scalars, non-canonical ranges, unparsable text.
var ErrInvalid = errors.New("resources: invalid resources")

// InsufficientError says which part of a subtraction is missing.
type InsufficientError struct {
	Kind    Kind   // the first short scalar kind, or -1 when the ports are short
	Have    int64  // the amount held (scalars only)
	Need    int64  // the amount asked for (scalars only)
	Missing Ranges // the ports asked for but not held (ports only)
}

func (e *InsufficientError) Error() string {
	if e.Kind < 0 {
		return fmt.Sprintf("resources: insufficient ports: %v are not available", e.Missing)
	}
	return fmt.Sprintf("resources: insufficient %s: need %s, have %s",
		e.Kind, formatScalar(e.Kind, e.Need), formatScalar(e.Kind, e.Have))
}

// Is makes errors.Is(err, ErrInsufficient) true.
func (e *InsufficientError) Is(target error) bool { return target == ErrInsufficient }

// ParseError names the part of a resource string that could not be parsed
// and says what is expected instead.
type ParseError struct {
	Part   string // the offending "name:value" part (or the whole input)
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("resources: cannot parse %q: %s", e.Part, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ParseError) Is(target error) bool { return target == ErrInvalid }

// RangeError reports a range that is malformed or out of canonical order.
type RangeError struct {
	Range  Range
	Reason string
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("resources: bad range [%d-%d]: %s", e.Range.Begin, e.Range.End, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *RangeError) Is(target error) bool { return target == ErrInvalid }

// ScalarError reports a scalar out of bounds (negative or above MaxScalar).
type ScalarError struct {
	Kind  Kind
	Value int64
}

func (e *ScalarError) Error() string {
	if e.Value < 0 {
		return fmt.Sprintf("resources: %s is negative (%d); amounts must be >= 0", e.Kind, e.Value)
	}
	return fmt.Sprintf("resources: %s is too large (%d > %d)", e.Kind, e.Value, MaxScalar)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ScalarError) Is(target error) bool { return target == ErrInvalid }
