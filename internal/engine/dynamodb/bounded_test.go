package dynamodb

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
)

func TestForEachBounded(t *testing.T) {
	var inFlight, peak, calls atomic.Int32
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- forEachBounded(t.Context(), 20, 3, func(ctx context.Context, i int) error {
			calls.Add(1)
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			return nil
		})
	}()
	// Hold the first calls until the limit is reached, so the peak is known.
	for inFlight.Load() < 3 {
		runtime.Gosched()
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("forEachBounded: %v", err)
	}
	if calls.Load() != 20 || peak.Load() != 3 {
		t.Errorf("calls %d (want 20), peak concurrency %d (want 3)", calls.Load(), peak.Load())
	}

	// The first error is returned and stops new calls.
	boom := errors.New("boom")
	calls.Store(0)
	err := forEachBounded(t.Context(), 100, 1, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() != 3 {
		t.Errorf("err %v after %d calls; want boom after 3", err, calls.Load())
	}
}
