package agent

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRetryOutlastsItsCap: registration keeps trying long after the delay
// reached its cap; wait.Backoff stopped about six tries in, which made
// 10,000 simulated agents starting together exit.
func TestRetryOutlastsItsCap(t *testing.T) {
	b := backoff{first: time.Millisecond, max: 2 * time.Millisecond}
	calls := 0
	err := b.retry(context.Background(), func(context.Context) bool {
		calls++
		return calls == 30
	})
	if err != nil || calls != 30 {
		t.Fatalf("retry = %v after %d calls, want nil after 30", err, calls)
	}
}

// TestRetryStopsWithItsContext: only the context ends the retries.
func TestRetryStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	b := backoff{first: time.Millisecond, max: 5 * time.Millisecond}
	err := b.retry(ctx, func(context.Context) bool { return false })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("retry = %v, want the context's error", err)
	}
}
