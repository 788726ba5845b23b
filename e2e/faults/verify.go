package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/internal/testparts"
	"github.com/s1bridge/s1bridge/sentinelone"
	"github.com/s1bridge/s1bridge/subjects"
)

type (
	// Event is one event read back from the events stream. The threat fields
	// are those of the threat a threat event carries, or of the Unified
	// Alert an alert event carries (Status and Verdict in UAM's UPPER_SNAKE,
	// Mitigation empty); zero for monitor events: the object as SentinelOne
	// had it when the event was made.
	Event struct {
		Seq        uint64
		Subject    string          // the NATS subject
		ID         string          // Nats-Msg-Id, which is the CloudEvents id
		Type       string          // the CloudEvents type
		Entity     subjects.Entity // threat or alert; "" for other events
		ThreatID   string          // the CloudEvents subject: the threat's (or alert's) id
		Status     string
		Verdict    string
		Mitigation string
		UpdatedAt  time.Time
	}

	// Report is what Verify found. The stream is right when OK: no
	// duplicates, nothing missing, no threat or alert the emulator does not
	// know, and every one's latest event as the emulator has it. Alerts are
	// listed as "alert <id>".
	Report struct {
		Events     int      // events in the stream
		Threats    int      // threats in the emulator
		Alerts     int      // Unified Alerts in the emulator
		Created    int      // created events, of threats and alerts
		Monitors   int      // monitor outcome events
		Duplicates []string // event ids in the stream more than once
		Missing    []string // threats (alerts) of the emulator without a created event
		Unknown    []string // threats (alerts) with events that the emulator does not have
		Mismatched []string // threats (alerts) whose latest event disagrees with the emulator
	}
)

// ReadEvents reads every event the stream holds when it is called.
func ReadEvents(ctx context.Context, nc *nats.Conn, stream string) ([]Event, error) {
	msgs, err := testparts.StreamMessages(ctx, nc, stream)
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			return out, err
		}
		h := m.Headers()
		ev := Event{Seq: md.Sequence.Stream, Subject: m.Subject(), ID: h.Get(subjects.HeaderMsgID),
			Type: h.Get("ce-type"), ThreatID: h.Get("ce-subject")}
		if strings.HasPrefix(ev.Type, subjects.TypePrefix+string(subjects.EntityThreat)+".") {
			var d struct {
				Threat struct {
					ThreatInfo struct {
						IncidentStatus   string    `json:"incidentStatus"`
						AnalystVerdict   string    `json:"analystVerdict"`
						MitigationStatus string    `json:"mitigationStatus"`
						UpdatedAt        time.Time `json:"updatedAt"`
					} `json:"threatInfo"`
				} `json:"threat"`
			}
			if err := json.Unmarshal(m.Data(), &d); err != nil {
				return out, fmt.Errorf("event %d (%s): %w", ev.Seq, ev.ID, err)
			}
			ti := d.Threat.ThreatInfo
			ev.Entity = subjects.EntityThreat
			ev.Status, ev.Verdict, ev.Mitigation, ev.UpdatedAt = ti.IncidentStatus, ti.AnalystVerdict, ti.MitigationStatus, ti.UpdatedAt
		} else if strings.HasPrefix(ev.Type, subjects.TypePrefix+string(subjects.EntityAlert)+".") {
			var d struct {
				Alert sentinelone.UAMAlert `json:"alert"`
			}
			if err := json.Unmarshal(m.Data(), &d); err != nil {
				return out, fmt.Errorf("event %d (%s): %w", ev.Seq, ev.ID, err)
			}
			ev.Entity = subjects.EntityAlert
			ev.Status, ev.Verdict, ev.UpdatedAt = d.Alert.Status, d.Alert.AnalystVerdict, d.Alert.UpdatedAt
		}
		out = append(out, ev)
	}
	return out, err
}

// Verify checks events against the emulator: every event id once, every
// threat and Unified Alert of the emulator with exactly one created event,
// and each one's latest event (by its updatedAt) carrying the values the
// emulator has now (a threat's incident status, analyst verdict and
// mitigation status; an alert's status and analyst verdict). Call it once
// the emulator has stopped changing and ingestion has caught up.
func Verify(events []Event, emu *emulator.Emulator) Report {
	r := Report{Events: len(events)}
	ids := map[string]int{}
	created := map[string]int{}
	latest := map[string]Event{}
	// key names an object apart from the other entity's: "alert <id>".
	key := func(e Event) string {
		if e.Entity == subjects.EntityAlert {
			return alertKey(e.ThreatID)
		}
		return e.ThreatID
	}
	for _, e := range events {
		ids[e.ID]++
		switch {
		case e.Type == subjects.TypeThreatCreated || e.Type == subjects.TypeAlertCreated:
			r.Created++
			created[key(e)]++
		case e.Entity == "":
			if strings.HasPrefix(e.Type, "s1bridge.monitor.") {
				r.Monitors++
			}
			continue
		}
		if l, ok := latest[key(e)]; !ok || e.UpdatedAt.After(l.UpdatedAt) {
			latest[key(e)] = e
		}
	}
	for id, n := range ids {
		if n > 1 {
			r.Duplicates = append(r.Duplicates, fmt.Sprintf("%s ×%d", id, n))
		}
	}
	want := emu.IDs().Threats
	r.Threats = len(want)
	known := make(map[string]bool, len(want))
	for _, id := range want {
		known[id] = true
		if created[id] == 0 {
			r.Missing = append(r.Missing, id)
			continue
		}
		st, ok := emu.Threat(id)
		got := latest[id]
		if ok && (got.Status != st.IncidentStatus || got.Verdict != st.AnalystVerdict || got.Mitigation != st.MitigationStatus) {
			r.Mismatched = append(r.Mismatched, fmt.Sprintf("%s: stream %s/%s/%s at %s, emulator %s/%s/%s at %s", id,
				got.Status, got.Verdict, got.Mitigation, got.UpdatedAt.Format(time.RFC3339Nano),
				st.IncidentStatus, st.AnalystVerdict, st.MitigationStatus, st.UpdatedAt.Format(time.RFC3339Nano)))
		}
	}
	alerts := emu.IDs().UAMAlerts
	r.Alerts = len(alerts)
	for _, id := range alerts {
		k := alertKey(id)
		known[k] = true
		if created[k] == 0 {
			r.Missing = append(r.Missing, k)
			continue
		}
		st, ok := emu.UAMAlert(id)
		got := latest[k]
		if ok && (got.Status != st.Status || got.Verdict != st.AnalystVerdict) {
			r.Mismatched = append(r.Mismatched, fmt.Sprintf("%s: stream %s/%s at %s, emulator %s/%s at %s", k,
				got.Status, got.Verdict, got.UpdatedAt.Format(time.RFC3339Nano),
				st.Status, st.AnalystVerdict, st.UpdatedAt.Format(time.RFC3339Nano)))
		}
	}
	for id := range latest {
		if !known[id] {
			r.Unknown = append(r.Unknown, id)
		}
	}
	sort.Strings(r.Duplicates)
	sort.Strings(r.Missing)
	sort.Strings(r.Unknown)
	sort.Strings(r.Mismatched)
	return r
}

// alertKey is how Verify names alert id in its maps and lists.
func alertKey(id string) string { return string(subjects.EntityAlert) + " " + id }

// OK reports whether the stream matches the emulator exactly once.
func (r Report) OK() bool {
	return len(r.Duplicates)+len(r.Missing)+len(r.Unknown)+len(r.Mismatched) == 0
}

// String summarises the report, naming the first few problems of each kind.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d events (%d created, %d monitor outcomes) for %d threats and %d alerts; %d duplicate ids, %d missing, %d unknown, %d mismatched",
		r.Events, r.Created, r.Monitors, r.Threats, r.Alerts, len(r.Duplicates), len(r.Missing), len(r.Unknown), len(r.Mismatched))
	for _, l := range []struct {
		what string
		s    []string
	}{{"duplicate", r.Duplicates}, {"missing", r.Missing}, {"unknown", r.Unknown}, {"mismatched", r.Mismatched}} {
		for i, s := range l.s {
			if i == 5 {
				fmt.Fprintf(&b, "\n  %s: … %d more", l.what, len(l.s)-i)
				break
			}
			fmt.Fprintf(&b, "\n  %s: %s", l.what, s)
		}
	}
	return b.String()
}
