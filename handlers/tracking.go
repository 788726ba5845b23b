package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"time"
)

// Tracked actions (DESIGN.md §13): SentinelOne answers agents.connect,
// agents.disconnect, agents.scan.start, agents.scan.abort, threats.mitigate
// and threats.fetch_file when it has accepted them; the agents carry them
// out later, or never. Their handlers hand the accepted action to the
// runtime (Runtime.Track), which watches SentinelOne until every target is
// confirmed or the deadline passes and publishes one outcome event; the
// reply names the tracking id and the subject of that event.

// Bounds of a request's trackTimeout (the same as
// consoles.<name>.tracking.timeout's).
const (
	MinTrackTimeout = time.Second
	MaxTrackTimeout = 24 * time.Hour
)

// TrackParams is the part of a tracked action's request that says how long
// to wait for SentinelOne's confirmation: TrackTimeout is a Go duration
// from MinTrackTimeout to MaxTrackTimeout; empty means the console's
// tracking.timeout.
type TrackParams struct {
	TrackTimeout string `json:"trackTimeout,omitempty" jsonschema:"pattern=^([0-9]+(\\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$,example=1h"`

	trackTimeout time.Duration // parsed by Validate
}

// Validate checks p and parses its duration.
func (p *TrackParams) Validate() error {
	d, err := parseDuration("trackTimeout", p.TrackTimeout)
	if err != nil {
		return err
	}
	if p.TrackTimeout != "" && (d < MinTrackTimeout || d > MaxTrackTimeout) {
		return Invalid("trackTimeout", "must be from %s to %s, not %s", MinTrackTimeout, MaxTrackTimeout, p.TrackTimeout)
	}
	p.trackTimeout = d
	return nil
}

// TrackedReply is the reply of the tracked actions: how many targets
// SentinelOne accepted, and where the outcome will be published.
// TrackingID and Subject are absent when the action could not be tracked
// (the action still happened: see Runtime.Track).
type TrackedReply struct {
	Affected int `json:"affected" jsonschema:"minimum=0"`
	// TrackingID identifies the tracked action; a repeat of the request
	// gets the same one.
	TrackingID string `json:"trackingId,omitempty" jsonschema:"pattern=^[a-z2-7]{24}$"`
	// Subject is <prefix>.<console>.event.action.<trackingId>.*: the one
	// outcome event (completed, failed or timed_out) is published there.
	Subject string `json:"subject,omitempty"`
}

// TrackSpec is an action SentinelOne has accepted, as its handler hands it
// to Runtime.Track.
type TrackSpec struct {
	// Action is the action name (ActionAgentsDisconnect, ...).
	Action string
	// Variant is what the action did when the action has several kinds
	// with their own confirmations: threats.mitigate's action (kill,
	// quarantine, ...); "" otherwise.
	Variant string
	// Targets are the ids the request named, each once, in its order.
	Targets []string
	// Refused maps targets SentinelOne said at once it will not act on (an
	// id it matched no object for, an action the target's OS does not
	// support) to its reason: they end failed with it.
	Refused map[string]string
	// Affected is SentinelOne's count of the targets it accepted. When it
	// is less than the targets neither refused nor counted, the tracker
	// looks the others up.
	Affected int
	// Timeout is how long to wait for confirmations; 0 means the console's
	// tracking.timeout.
	Timeout time.Duration
	// RequestedAt is when the action was sent to SentinelOne (just
	// before): only activities after it confirm the action.
	RequestedAt time.Time
	// Request identifies the request: a repeat of it (same ID and Source)
	// gets the same tracking id and tracks nothing new. Its trace context
	// travels to the outcome event.
	Request RequestInfo
}

// TrackReply is where the outcome of a tracked action will be.
type TrackReply struct {
	TrackingID string
	// Subject is the wildcard of the tracked action's outcome events.
	Subject string
}

// trackNow is the time a tracked action is sent: UTC, to the microsecond
// like SentinelOne's timestamps, rounded down so that an activity the
// console logs in the same microsecond still counts.
func trackNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// track hands an action SentinelOne accepted (affected targets) to the
// runtime and returns the reply. When tracking fails the action has
// happened all the same: the reply says what SentinelOne accepted, without
// trackingId and subject (never invented), and the failure is logged as an
// error. Answering with an error instead would tell a playbook that the
// isolation or the mitigation did not happen when it did.
func track(ctx context.Context, env *Env, affected int, spec TrackSpec) *TrackedReply {
	reply := &TrackedReply{Affected: affected}
	spec.Affected = affected
	spec.Targets = distinct(spec.Targets)
	spec.Request, _ = RequestFrom(ctx)
	var err error
	var tr *TrackReply
	if env.Runtime == nil {
		err = Errorf(CodeUnavailable, "action tracking is not available on this replica")
	} else {
		tr, err = env.Runtime.Track(ctx, env.Console, spec)
	}
	if err != nil {
		// The targets, so that whoever reads the log can check them by hand
		// (the first 50: a request may name thousands).
		env.log().LogAttrs(ctx, slog.LevelError, "action accepted by SentinelOne but NOT TRACKED: no outcome event will follow, the reply has no trackingId",
			slog.String("tracked_action", spec.Action), slog.Int("affected", affected), slog.Int("targets", len(spec.Targets)),
			slog.Any("target_ids", spec.Targets[:min(len(spec.Targets), 50)]), slog.Any("error", err))
		return reply
	}
	reply.TrackingID, reply.Subject = tr.TrackingID, tr.Subject
	return reply
}

// distinct returns ids without repeats, in their order.
func distinct(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// notMatched is the reason of a target SentinelOne matched nothing for.
func notMatched(kind, id string) string {
	return "SentinelOne matched no " + kind + " " + id + ": it does not exist, or the API token cannot see it"
}

// mitigationDetail is SentinelOne's report of a mitigation on one threat.
type mitigationDetail struct {
	ThreatID string            `json:"threatId"`
	Reports  []json.RawMessage `json:"reports"`
	Skipped  []struct {
		Description string `json:"description"`
		Reason      string `json:"reason"`
	} `json:"skipped"`
}

// mitigationRefused reads SentinelOne's per-threat details of a
// mitigation: a threat it skipped (e.g. a rollback on Linux) is refused
// with its description and reason, a threat absent from the details was not
// matched. Without details (a console that sends none) it returns nil and
// the tracker looks up the threats SentinelOne did not count.
func mitigationRefused(ids []string, details json.RawMessage) map[string]string {
	var ds []mitigationDetail
	if json.Unmarshal(details, &ds) != nil || ds == nil {
		return nil
	}
	refused := map[string]string{}
	for _, id := range ids {
		i := slices.IndexFunc(ds, func(d mitigationDetail) bool { return d.ThreatID == id })
		switch {
		case i < 0:
			refused[id] = notMatched("threat", id)
		case len(ds[i].Reports) == 0 && len(ds[i].Skipped) > 0:
			s := ds[i].Skipped[0]
			refused[id] = "SentinelOne skipped it: " + s.Description + " (" + s.Reason + ")"
		}
	}
	return refused
}
