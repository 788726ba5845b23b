package budget

import (
	"cmp"
	"slices"
	"time"
)

// Priorities of the lanes in allocation order (sentinelone.Lane values are
// not in priority order).
const (
	prioMutating = iota
	prioRead
	prioBackground
	numPrio
)

// wants is what one replica would use of the budget in each lane, by
// priority, as fractions of the budget.
type wants [numPrio]float64

// allocate splits the whole budget (1) among replicas wanting want[i], so
// that the deployment as a whole serves the lanes in priority order:
//
//   - every replica gets floor first, so one that is idle now can serve a
//     call at once (its bucket holds a token) and ask for more with its
//     next heartbeat;
//   - then lane by lane, mutating, read, background, what the replicas still
//     need to cover their wants up to that lane is given out of what is
//     left, max-min fair (water-filling: a replica needing less than an
//     equal part gets what it needs, the others split the rest equally), so
//     reads on one replica come before background work on another;
//   - what nobody wants is split equally: room to grow before the next
//     heartbeat.
//
// The shares add up to 1 when floor × len(want) ≤ 1, which the caller
// guarantees. Every replica computes the same shares from the same
// heartbeats, so they agree without talking further.
func allocate(want []wants, floor float64) []float64 {
	n := len(want)
	shares := make([]float64, n)
	if n == 0 {
		return shares
	}
	for i := range shares {
		shares[i] = floor
	}
	left := 1 - floor*float64(n)
	covered := make([]float64, n) // wants up to the current lane
	need := make([]float64, n)
	for p := range numPrio {
		for i := range want {
			covered[i] += max(want[i][p], 0)
			need[i] = max(covered[i]-shares[i], 0)
		}
		for i, g := range waterFill(need, left) {
			shares[i] += g
			left -= g
		}
	}
	if left > 0 {
		for i := range shares {
			shares[i] += left / float64(n)
		}
	}
	return shares
}

// waterFill gives out at most total among need, max-min fair: everyone gets
// what they need when total covers it all; otherwise those needing less
// than an equal part of what is left get what they need, and the rest
// split the remainder equally.
func waterFill(need []float64, total float64) []float64 {
	give := make([]float64, len(need))
	sum := 0.0
	for _, v := range need {
		sum += v
	}
	if sum <= total {
		copy(give, need)
		return give
	}
	order := make([]int, len(need))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(need[a], need[b]) })
	left := max(total, 0)
	for k, i := range order {
		level := left / float64(len(need)-k)
		if need[i] <= level {
			give[i] = need[i]
			left -= need[i]
			continue
		}
		for _, j := range order[k:] {
			give[j] = level
		}
		break
	}
	return give
}

// throttle is the deployment's reaction to SentinelOne's 429s: after a
// decrease the budget is multiplied by Factor, which then climbs back to 1
// linearly. Every replica carries the latest one it knows in its heartbeat,
// so all of them (and any that joins later) apply the same one. Seq orders
// the decreases; two replicas deciding one at once pick the same Seq, and
// the lower Factor wins.
type throttle struct {
	Seq    uint64    `json:"seq"`
	Factor float64   `json:"factor"` // the factor right after the decrease, in (0, 1]
	At     time.Time `json:"at"`     // when it was decided (the deciding replica's clock)
}

// factor is the throttle's multiplier at now: 1 without a throttle, else
// Factor plus what recovery (the time to climb from 0 to 1) has given back
// since At. A throttle dated in the future (another replica's clock ahead
// of this one) has not started recovering.
func (t throttle) factor(now time.Time, recovery time.Duration) float64 {
	if t.Seq == 0 {
		return 1
	}
	elapsed := max(now.Sub(t.At), 0)
	if recovery <= 0 {
		return 1
	}
	return min(1, t.Factor+elapsed.Seconds()/recovery.Seconds())
}

// newer reports whether o replaces t: a later decrease, or the same one
// decided more severely by another replica at the same time.
func (t throttle) newer(o throttle) bool {
	return o.Seq > t.Seq || o.Seq == t.Seq && o.Seq > 0 && o.Factor < t.Factor
}
