package sentinelone

import "context"

// Lane is the priority of a call when callers contend for the rate limit.
// A call's lane comes from its context (WithLane); the zero value, and the
// lane of a context without one, is LaneRead.
//
// Under contention the limiter serves every waiter of a higher-priority lane
// before any waiter of a lower one, and waiters of one lane in the order
// they arrived: LaneMutating first, then LaneRead, then LaneBackground. The
// order is strict: a steady flood of reads can starve background work, which
// is the point (a containment action must not wait behind a list call, and a
// list call a person waits for must not wait behind ingestion).
type Lane uint8

// The lanes, most urgent first in priority (not in numeric order: the zero
// value is the default, LaneRead).
const (
	// LaneRead is a read-only call somebody waits for (an action's list or
	// get). It is the default.
	LaneRead Lane = iota
	// LaneMutating is a call that changes the console (an action whose
	// table entry says Mutating): containment must not wait behind reads.
	LaneMutating
	// LaneBackground is work nobody waits for: ingestion, monitors,
	// tracking.
	LaneBackground

	// NumLanes is the number of lanes.
	NumLanes = 3
)

var laneNames = [NumLanes]string{LaneRead: "read", LaneMutating: "mutating", LaneBackground: "background"}

// String returns "mutating", "read" or "background".
func (l Lane) String() string {
	if int(l) < NumLanes {
		return laneNames[l]
	}
	return "read"
}

// rank is the lane's priority, 0 the most urgent; an unknown lane counts as
// LaneRead.
func (l Lane) rank() int {
	switch l {
	case LaneMutating:
		return 0
	case LaneBackground:
		return 2
	}
	return 1
}

type laneKey struct{}

// WithLane returns ctx carrying lane: every attempt of a call made with it
// waits for the rate limiter in that lane. A lane outside the three known
// ones is treated as LaneRead.
func WithLane(ctx context.Context, lane Lane) context.Context {
	return context.WithValue(ctx, laneKey{}, lane)
}

// LaneFrom returns the lane ctx carries, LaneRead when it carries none (or
// an unknown one).
func LaneFrom(ctx context.Context) Lane {
	l, _ := ctx.Value(laneKey{}).(Lane)
	if int(l) >= NumLanes {
		return LaneRead
	}
	return l
}
