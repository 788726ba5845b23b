package handlers

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"
)

// States of a monitor in the threats.monitor reply (DESIGN.md §8).
const (
	// MonitorWatching: the threat is not resolved; the outcome comes later,
	// as an event on the reply's subject.
	MonitorWatching = "watching"
	// MonitorResolved: the threat was resolved already; the resolved event
	// is in the stream before the reply is sent.
	MonitorResolved = "resolved"
)

// Bounds of a monitor's durations.
const (
	// MinMonitorPollInterval is the shortest pollInterval a request may ask
	// for (the same floor as consoles.<c>.monitor.poll_interval).
	MinMonitorPollInterval = time.Second
	// MaxMonitorTimeout is the longest timeout a request may ask for: a
	// year, well past any incident, and far from time arithmetic overflow.
	MaxMonitorTimeout = 365 * 24 * time.Hour
)

// ThreatsMonitorRequest is the request of threats.monitor. Timeout and
// PollInterval are Go durations ("90s", "12h"); empty means the console's
// monitor.default_timeout and monitor.poll_interval.
type ThreatsMonitorRequest struct {
	ThreatID     string `json:"threatId" jsonschema:"pattern=^[1-9][0-9]{17\\,19}$"`
	Timeout      string `json:"timeout,omitempty" jsonschema:"pattern=^([0-9]+(\\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$,example=12h"`
	PollInterval string `json:"pollInterval,omitempty" jsonschema:"pattern=^([0-9]+(\\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$,example=30s"`

	timeout, pollInterval time.Duration // parsed by Validate
}

// Validate checks r and parses its durations.
func (r *ThreatsMonitorRequest) Validate() error {
	if r.ThreatID == "" {
		return Invalid("threatId", "is required")
	}
	if err := checkIDs("threatId", []string{r.ThreatID}, objectIDs); err != nil {
		return Invalid("threatId", "%q is not a SentinelOne id (a string of at least 18 digits)", r.ThreatID)
	}
	var err error
	if r.timeout, err = parseDuration("timeout", r.Timeout); err != nil {
		return err
	}
	if r.Timeout != "" && (r.timeout <= 0 || r.timeout > MaxMonitorTimeout) {
		return Invalid("timeout", "must be more than 0 and at most %s, not %s", MaxMonitorTimeout, r.Timeout)
	}
	if r.pollInterval, err = parseDuration("pollInterval", r.PollInterval); err != nil {
		return err
	}
	if r.PollInterval != "" && r.pollInterval < MinMonitorPollInterval {
		return Invalid("pollInterval", "must be at least %s, not %s", MinMonitorPollInterval, r.PollInterval)
	}
	return nil
}

// parseDuration parses a Go duration; "" gives 0.
func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, Invalid(field, "%q is not a Go duration such as 90s, 15m or 12h", s)
	}
	return d, nil
}

// MonitorSpec is a monitor as threats.monitor asks the runtime to start it.
type MonitorSpec struct {
	ThreatID string
	// Timeout is the monitor's lifetime; 0 means monitor.default_timeout.
	Timeout time.Duration
	// PollInterval is how soon a resolution must be seen at the latest; 0
	// means monitor.poll_interval.
	PollInterval time.Duration
	// Request identifies the request: a repeat of it (same ID and Source)
	// starts nothing new. Its trace context travels to the outcome event.
	Request RequestInfo
}

// MonitorReply is the reply of threats.monitor. Subject is the wildcard
// <prefix>.<console>.event.monitor.<monitorId>.* the outcome is published on.
type MonitorReply struct {
	MonitorID string    `json:"monitorId"`
	ThreatID  string    `json:"threatId"`
	State     string    `json:"state" jsonschema:"enum=watching,enum=resolved"` // MonitorWatching or MonitorResolved
	Deadline  time.Time `json:"deadline"`
	Subject   string    `json:"subject"`
}

// MonitorItem is one active monitor in the monitors.list reply.
// PollInterval is a Go duration.
type MonitorItem struct {
	MonitorID    string    `json:"monitorId"`
	ThreatID     string    `json:"threatId"`
	StartedAt    time.Time `json:"startedAt"`
	Deadline     time.Time `json:"deadline"`
	PollInterval string    `json:"pollInterval"`
}

// MonitorsListRequest is the request of monitors.list: only paging.
type MonitorsListRequest struct {
	ListParams
}

// Validate checks r.
func (r *MonitorsListRequest) Validate() error {
	if err := r.ListParams.Validate(); err != nil {
		return err
	}
	if r.Cursor != "" {
		if _, _, ok := parseMonitorCursor(r.Cursor); !ok {
			return Invalid("cursor", "is not a monitors.list cursor (use a nextCursor of an earlier reply)")
		}
	}
	return nil
}

// MonitorsCancelRequest is the request of monitors.cancel.
type MonitorsCancelRequest struct {
	MonitorID string `json:"monitorId" jsonschema:"maxLength=64,pattern=^[A-Za-z0-9_-]+$"`
}

// maxMonitorIDLen bounds a monitor id: s1bridge's are 24 characters.
const maxMonitorIDLen = 64

// Validate checks r: a monitor id is one subject token.
func (r *MonitorsCancelRequest) Validate() error {
	switch {
	case r.MonitorID == "":
		return Invalid("monitorId", "is required")
	case len(r.MonitorID) > maxMonitorIDLen || strings.Trim(r.MonitorID, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "":
		return Invalid("monitorId", "%q is not a monitor id (a monitorId from a threats.monitor reply)", r.MonitorID)
	}
	return nil
}

// MonitorsCancelReply is the reply of monitors.cancel.
type MonitorsCancelReply struct {
	Cancelled bool `json:"cancelled"`
}

// runtimeOf returns env's runtime, or a 503 while there is none.
func runtimeOf(env *Env) (Runtime, error) {
	if env.Runtime == nil {
		return nil, Errorf(CodeUnavailable, "monitors are not available on this replica yet")
	}
	return env.Runtime, nil
}

func threatsMonitor(ctx context.Context, env *Env, r *ThreatsMonitorRequest) (*MonitorReply, error) {
	rt, err := runtimeOf(env)
	if err != nil {
		return nil, err
	}
	req, _ := RequestFrom(ctx)
	return rt.StartMonitor(ctx, env.Console, MonitorSpec{
		ThreatID: r.ThreatID, Timeout: r.timeout, PollInterval: r.pollInterval, Request: req,
	})
}

func monitorsCancel(ctx context.Context, env *Env, r *MonitorsCancelRequest) (*MonitorsCancelReply, error) {
	rt, err := runtimeOf(env)
	if err != nil {
		return nil, err
	}
	if err := rt.CancelMonitor(ctx, env.Console, r.MonitorID); err != nil {
		return nil, err
	}
	return &MonitorsCancelReply{Cancelled: true}, nil
}

// monitorsList pages the runtime's list like every list action: limit items
// (all with All) from cursor, stopping early, with truncated set, where the
// next item would push the reply past Env.MaxReplyBytes. A cursor is the
// position of the first item left out (startedAt and monitorId), so a reply
// resumes correctly when monitors end in between.
func monitorsList(ctx context.Context, env *Env, r *MonitorsListRequest) (*ListReply, error) {
	rt, err := runtimeOf(env)
	if err != nil {
		return nil, err
	}
	all, err := rt.ListMonitors(ctx, env.Console)
	if err != nil {
		return nil, err
	}
	start := 0
	if r.Cursor != "" {
		at, id, _ := parseMonitorCursor(r.Cursor) // checked by Validate
		start = sort.Search(len(all), func(i int) bool {
			m := all[i]
			return !m.StartedAt.Before(at) && (!m.StartedAt.Equal(at) || m.MonitorID >= id)
		})
	}
	limit := r.PageSize()
	if r.All {
		limit = len(all)
	}
	reply := &ListReply{Items: []json.RawMessage{}, TotalItems: len(all)}
	// The envelope at its largest: a cursor and truncated true.
	longest := strings.Repeat("9", len("-9223372036854775808.")) + strings.Repeat("x", maxMonitorIDLen)
	envelope, _ := json.Marshal(ListReply{Items: []json.RawMessage{}, NextCursor: &longest, TotalItems: len(all), Truncated: true})
	used := len(envelope)
	i := start
	for ; i < len(all) && len(reply.Items) < limit; i++ {
		b, err := json.Marshal(all[i])
		if err != nil {
			return nil, err
		}
		need := len(b)
		if len(reply.Items) > 0 {
			need++ // the comma
		}
		if env.MaxReplyBytes > 0 && used+need > env.MaxReplyBytes {
			if len(reply.Items) == 0 {
				return nil, Errorf(CodeTooLarge, "reply too large: one monitor is %d bytes, more than the %d bytes a reply may hold", len(b), env.MaxReplyBytes)
			}
			reply.Truncated = true
			break
		}
		used += need
		reply.Items = append(reply.Items, b)
	}
	if i < len(all) {
		next := monitorCursor(all[i])
		reply.NextCursor = &next
	}
	return reply, nil
}

// monitorCursor is the position of m in the list: "<startedAt in Unix
// nanoseconds>.<monitorId>".
func monitorCursor(m MonitorItem) string {
	return strconv.FormatInt(m.StartedAt.UnixNano(), 10) + "." + m.MonitorID
}

func parseMonitorCursor(s string) (time.Time, string, bool) {
	ns, id, ok := strings.Cut(s, ".")
	if !ok || id == "" {
		return time.Time{}, "", false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return time.Time{}, "", false
	}
	return time.Unix(0, n).UTC(), id, true
}
