package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/emulator"
)

// Track implements Runtime: it records spec and answers a tracking id made
// of the action's name, or trackErr.
func (f *fakeRuntime) Track(_ context.Context, console string, spec TrackSpec) (*TrackReply, error) {
	f.tracked = append(f.tracked, spec)
	if f.trackErr != nil {
		return nil, f.trackErr
	}
	return &TrackReply{TrackingID: "trk" + strings.ReplaceAll(spec.Action, ".", ""), Subject: "s1." + console + ".event.action.trk.*"}, nil
}

// threatsOn returns n threats whose agent runs os.
func threatsOn(t *testing.T, e *emulator.Emulator, os string, n int) []string {
	t.Helper()
	out := e.ThreatsOn(os, false, n)
	if len(out) < n {
		t.Fatalf("only %d threats on %s", len(out), os)
	}
	return out
}

// TestTrackedActionsHandToRuntime: each tracked action, once SentinelOne
// accepted it, hands the runtime what the tracker needs (the action and
// its kind, each target once in the request's order, what SentinelOne
// refused at once, its count, the timeout, when it was sent, the request),
// and its reply carries the runtime's tracking id and subject.
func TestTrackedActionsHandToRuntime(t *testing.T) {
	e, env := emu(t)
	rt := &fakeRuntime{}
	env.Runtime = rt
	win := windowsThreats(t, e, 2)
	linux := threatsOn(t, e, "linux", 1)
	agents := e.IDs().Agents[:2]
	const unknown = "1999999999999999999"
	q := func(ids ...string) string { b, _ := json.Marshal(ids); return string(b) }
	for _, tc := range []struct {
		action, data, variant string
		targets               []string
		affected              int
		refused               map[string]string // id → a fragment of the reason
		timeout               time.Duration
	}{
		{ActionAgentsDisconnect, `{"agentIds":` + q(agents[0], agents[1], agents[0]) + `,"trackTimeout":"90s"}`, "", agents, 2, nil, 90 * time.Second},
		{ActionAgentsConnect, `{"agentIds":` + q(agents[1]) + `}`, "", agents[1:], 1, nil, 0},
		{ActionAgentsScanStart, `{"agentIds":` + q(agents[0], unknown) + `,"trackTimeout":"24h"}`, "", []string{agents[0], unknown}, 1, nil, 24 * time.Hour},
		{ActionAgentsScanAbort, `{"agentIds":` + q(agents[0]) + `,"trackTimeout":"1s"}`, "", agents[:1], 1, nil, time.Second},
		{ActionThreatsMitigate, `{"threatIds":` + q(win[0], unknown, linux[0]) + `,"action":"rollback_remediation"}`, "rollback_remediation",
			[]string{win[0], unknown, linux[0]}, 1, map[string]string{unknown: "matched no threat " + unknown, linux[0]: "not supported on linux (not_supported)"}, 0},
		{ActionThreatsFetchFile, `{"threatIds":` + q(win[1], unknown) + `,"password":"` + testPassword + `","trackTimeout":"2h"}`, "",
			[]string{win[1], unknown}, 1, map[string]string{unknown: "matched no threat " + unknown}, 2 * time.Hour},
	} {
		t.Run(tc.action, func(t *testing.T) {
			rt.tracked = nil
			before := time.Now().Add(-time.Microsecond)
			var reply TrackedReply
			mustRun(t, env, tc.action, tc.data, &reply)
			after := time.Now()
			want := TrackedReply{Affected: tc.affected, TrackingID: "trk" + strings.ReplaceAll(tc.action, ".", ""), Subject: "s1.main.event.action.trk.*"}
			if reply != want {
				t.Errorf("reply %+v, want %+v", reply, want)
			}
			if len(rt.tracked) != 1 {
				t.Fatalf("Track called %d times", len(rt.tracked))
			}
			s := rt.tracked[0]
			if s.Action != tc.action || s.Variant != tc.variant || !slices.Equal(s.Targets, tc.targets) || s.Affected != tc.affected || s.Timeout != tc.timeout {
				t.Errorf("spec %+v", s)
			}
			if s.RequestedAt.Before(before) || s.RequestedAt.After(after) || s.RequestedAt.Location() != time.UTC {
				t.Errorf("requestedAt %s, not between %s and %s in UTC", s.RequestedAt, before, after)
			}
			if len(s.Refused) != len(tc.refused) {
				t.Errorf("refused %v, want %v", s.Refused, tc.refused)
			}
			for id, frag := range tc.refused {
				if !strings.Contains(s.Refused[id], frag) {
					t.Errorf("refused[%s] = %q, want it to say %q", id, s.Refused[id], frag)
				}
			}
		})
	}
}

// TestTrackingUnavailableRepliesUntracked: when the runtime cannot track,
// the action SentinelOne accepted is still reported as done (affected),
// without a tracking id or subject, and the failure is logged as an error.
func TestTrackingUnavailableRepliesUntracked(t *testing.T) {
	e, env := emu(t)
	var logs bytes.Buffer
	env.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	agent := e.IDs().Agents[0]
	for _, rt := range []Runtime{nil, &fakeRuntime{trackErr: errors.New("tracking store unreachable")}} {
		env.Runtime = rt
		logs.Reset()
		b := mustRun(t, env, ActionAgentsDisconnect, `{"agentIds":["`+agent+`"]}`, nil)
		if string(b) != `{"affected":1}` {
			t.Errorf("reply %s, want {\"affected\":1}", b)
		}
		if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "NOT TRACKED") || !strings.Contains(l, agent) {
			t.Errorf("log %q", l)
		}
	}
}

// TestTrackTimeoutBounds: trackTimeout is a Go duration from 1s to 24h on
// every tracked request; anything else is a 400 naming it, before
// SentinelOne is called.
func TestTrackTimeoutBounds(t *testing.T) {
	e, env := emu(t)
	env.Runtime = &fakeRuntime{}
	agent, threat := e.IDs().Agents[0], e.IDs().Threats[0]
	requests := map[string]string{
		ActionAgentsConnect:    `{"agentIds":["` + agent + `"],`,
		ActionAgentsDisconnect: `{"agentIds":["` + agent + `"],`,
		ActionAgentsScanStart:  `{"agentIds":["` + agent + `"],`,
		ActionAgentsScanAbort:  `{"agentIds":["` + agent + `"],`,
		ActionThreatsMitigate:  `{"threatIds":["` + threat + `"],"action":"kill",`,
		ActionThreatsFetchFile: `{"threatIds":["` + threat + `"],"password":"` + testPassword + `",`,
	}
	e.ResetRequests()
	for action, head := range requests {
		for _, bad := range []string{`"0s"`, `"999ms"`, `"24h0m1s"`, `"25h"`, `"-1h"`, `"soon"`, `"10"`, `""x`, `60`} {
			_, err := run(t, env, action, head+`"trackTimeout":`+bad+`}`)
			if err == nil || err.Code != CodeInvalid || !strings.Contains(err.Message, "trackTimeout") && !strings.Contains(err.Message, "data") {
				t.Errorf("%s trackTimeout %s: %v", action, bad, err)
			}
		}
	}
	if n := len(e.Requests()); n != 0 {
		t.Errorf("refused requests made %d upstream calls", n)
	}
}

func TestMitigationRefused(t *testing.T) {
	ids := []string{"1", "2", "3"}
	for _, tc := range []struct {
		details string
		want    map[string]string
	}{
		{`null`, nil},
		{``, nil},
		{`{"unexpected":true}`, nil},
		{`[{"threatId":"1","reports":[{"action":"kill"}],"skipped":[]},{"threatId":"2","reports":[],"skipped":[{"action":"rollback","description":"rollback is not supported on linux","reason":"not_supported"}]}]`,
			map[string]string{"2": "SentinelOne skipped it: rollback is not supported on linux (not_supported)", "3": notMatched("threat", "3")}},
	} {
		got := mitigationRefused(ids, json.RawMessage(tc.details))
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want %v", tc.details, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: [%s] %q, want %q", tc.details, k, got[k], v)
			}
		}
	}
}
