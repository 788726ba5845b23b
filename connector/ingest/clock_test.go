package ingest

import (
	"sync"
	"time"
)

// clock is a settable clock for the emulator: it runs with real time from
// an offset that Advance moves forward.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
	start  time.Time
	real   time.Time
}

func newClock(start time.Time) *clock { return &clock{start: start, real: time.Now()} }

// Now implements the emulator's clock.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.start.Add(time.Since(c.real) + c.offset)
}

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}
