package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeRuntime records what the monitor and tracked handlers ask of the
// runtime.
type fakeRuntime struct {
	spec      MonitorSpec
	items     []MonitorItem
	cancelled string
	err       error
	tracked   []TrackSpec // Track's specs, in order
	trackErr  error       // what Track answers
}

func (f *fakeRuntime) IngestStatus(context.Context, string) (*IngestStatusReply, error) {
	return nil, nil
}

// action returns the action called name.
func action(t testing.TB, name string) Action {
	t.Helper()
	a, ok := Lookup(name)
	if !ok {
		t.Fatalf("no action %s", name)
	}
	return a
}

func (f *fakeRuntime) StartMonitor(_ context.Context, console string, spec MonitorSpec) (*MonitorReply, error) {
	f.spec = spec
	if f.err != nil {
		return nil, f.err
	}
	return &MonitorReply{MonitorID: "m1", ThreatID: spec.ThreatID, State: MonitorWatching, Subject: "s1." + console + ".event.monitor.m1.*"}, nil
}

func (f *fakeRuntime) ListMonitors(context.Context, string) ([]MonitorItem, error) {
	return f.items, f.err
}

func (f *fakeRuntime) CancelMonitor(_ context.Context, _, id string) error {
	f.cancelled = id
	return f.err
}

func monitorEnv(rt Runtime) *Env { return &Env{Console: "main", Runtime: rt} }

func TestThreatsMonitorRequest(t *testing.T) {
	for _, tc := range []struct {
		data         string
		timeout, pi  time.Duration
		errField     string
		errFragments string
	}{
		{data: `{"threatId":"` + id(1) + `"}`},
		{data: `{"threatId":"` + id(1) + `","timeout":"90m","pollInterval":"1s"}`, timeout: 90 * time.Minute, pi: time.Second},
		{data: `{"threatId":"` + id(1) + `","timeout":"8760h"}`, timeout: MaxMonitorTimeout},
		{data: `{}`, errField: "threatId", errFragments: "required"},
		{data: `{"threatId":"12"}`, errField: "threatId", errFragments: "SentinelOne id"},
		{data: `{"threatId":["` + id(1) + `"]}`, errField: "threatId", errFragments: "string"},
		{data: `{"threatId":"` + id(1) + `","timeout":"12"}`, errField: "timeout", errFragments: "Go duration"},
		{data: `{"threatId":"` + id(1) + `","timeout":"0s"}`, errField: "timeout", errFragments: "more than 0"},
		{data: `{"threatId":"` + id(1) + `","timeout":"8761h"}`, errField: "timeout", errFragments: "at most"},
		{data: `{"threatId":"` + id(1) + `","pollInterval":"999ms"}`, errField: "pollInterval", errFragments: "at least 1s"},
		{data: `{"threatId":"` + id(1) + `","pollInterval":30}`, errField: "pollInterval", errFragments: "string"},
	} {
		t.Run(tc.data, func(t *testing.T) {
			rt := &fakeRuntime{}
			req := RequestInfo{ID: "req-1", Source: "/soar", TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
			out, err := action(t, ActionThreatsMonitor).Handle(WithRequest(context.Background(), req), monitorEnv(rt), []byte(tc.data))
			if tc.errField != "" {
				e := AsError(err)
				if e == nil || e.Code != CodeInvalid || !strings.HasPrefix(e.Message, tc.errField) || !strings.Contains(e.Message, tc.errFragments) {
					t.Fatalf("error %v, want a 400 on %s about %q", err, tc.errField, tc.errFragments)
				}
				if rt.spec.ThreatID != "" {
					t.Error("an invalid request reached the runtime")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := MonitorSpec{ThreatID: id(1), Timeout: tc.timeout, PollInterval: tc.pi, Request: req}
			if rt.spec != want {
				t.Errorf("runtime got %+v, want %+v", rt.spec, want)
			}
			if r := out.(*MonitorReply); r.MonitorID != "m1" || r.ThreatID != id(1) {
				t.Errorf("reply %+v", r)
			}
		})
	}
}

func TestMonitorActionsWithoutRuntime(t *testing.T) {
	for _, a := range []Action{action(t, ActionThreatsMonitor), action(t, ActionMonitorsList), action(t, ActionMonitorsCancel), action(t, ActionIngestStatus)} {
		data := map[string]string{ActionThreatsMonitor: `{"threatId":"` + id(1) + `"}`, ActionMonitorsCancel: `{"monitorId":"m1"}`}[a.Name]
		_, err := a.Handle(context.Background(), &Env{Console: "main"}, []byte(data))
		if e := AsError(err); e == nil || e.Code != CodeUnavailable || !e.Retryable {
			t.Errorf("%s without a runtime: %v, want a retryable 503", a.Name, err)
		}
	}
}

func TestMonitorsCancel(t *testing.T) {
	rt := &fakeRuntime{}
	out, err := action(t, ActionMonitorsCancel).Handle(context.Background(), monitorEnv(rt), []byte(`{"monitorId":"abc_DEF-123"}`))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(out); string(b) != `{"cancelled":true}` || rt.cancelled != "abc_DEF-123" {
		t.Errorf("reply %s, runtime cancelled %q", b, rt.cancelled)
	}
	rt.err = Errorf(CodeNotFound, "monitorId: no active monitor")
	if _, err := action(t, ActionMonitorsCancel).Handle(context.Background(), monitorEnv(rt), []byte(`{"monitorId":"gone"}`)); !errors.Is(err, &Error{Code: CodeNotFound}) {
		t.Errorf("runtime's 404 became %v", err)
	}
	for _, data := range []string{`{}`, `{"monitorId":""}`, `{"monitorId":"a.b"}`, `{"monitorId":"a*"}`, `{"monitorId":"` + strings.Repeat("a", 65) + `"}`} {
		rt.cancelled = ""
		_, err := action(t, ActionMonitorsCancel).Handle(context.Background(), monitorEnv(rt), []byte(data))
		if e := AsError(err); e == nil || e.Code != CodeInvalid || !strings.HasPrefix(e.Message, "monitorId") || rt.cancelled != "" {
			t.Errorf("%s: %v, want a 400 on monitorId", data, err)
		}
	}
}

// monitorItems returns n monitors started a second apart, two at a time
// (so that the cursor must tell monitors of one startedAt apart).
func monitorItems(n int) []MonitorItem {
	base := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	out := make([]MonitorItem, n)
	for i := range out {
		at := base.Add(time.Duration(i/2) * time.Second)
		out[i] = MonitorItem{MonitorID: fmt.Sprintf("m%03d", i), ThreatID: id(i), StartedAt: at, Deadline: at.Add(time.Hour), PollInterval: "30s"}
	}
	return out
}

func listIDs(t *testing.T, l listResult) []string {
	t.Helper()
	var out []string
	for _, raw := range l.Items {
		var it MonitorItem
		if err := json.Unmarshal(raw, &it); err != nil {
			t.Fatal(err)
		}
		out = append(out, it.MonitorID)
	}
	return out
}

func runList(t *testing.T, env *Env, data string) listResult {
	t.Helper()
	out, err := action(t, ActionMonitorsList).Handle(context.Background(), env, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out)
	if env.MaxReplyBytes > 0 && len(b) > env.MaxReplyBytes {
		t.Fatalf("reply of %d bytes over the bound %d", len(b), env.MaxReplyBytes)
	}
	var l listResult
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMonitorsListPaging(t *testing.T) {
	rt := &fakeRuntime{items: monitorItems(7)}
	env := monitorEnv(rt)
	// Empty list: an empty array, not null.
	if l := runList(t, monitorEnv(&fakeRuntime{}), `{}`); l.Items == nil || l.TotalItems != 0 || l.NextCursor != nil {
		t.Errorf("empty list %+v", l)
	}
	// The default limit takes them all; pages of 3 walk them in order.
	if l := runList(t, env, `{}`); len(l.Items) != 7 || l.NextCursor != nil || l.Truncated || l.TotalItems != 7 {
		t.Errorf("default page %+v", l)
	}
	var got []string
	l := runList(t, env, `{"limit":3}`)
	for pages := 1; ; pages++ {
		if l.TotalItems != 7 || l.Truncated {
			t.Fatalf("page %+v", l)
		}
		got = append(got, listIDs(t, l)...)
		if l.NextCursor == nil {
			if pages != 3 {
				t.Errorf("%d pages of 3 for 7 items", pages)
			}
			break
		}
		l = runList(t, env, `{"limit":3,"cursor":"`+*l.NextCursor+`"}`)
	}
	if fmt.Sprint(got) != "[m000 m001 m002 m003 m004 m005 m006]" {
		t.Errorf("pages held %v", got)
	}
	// A cursor resumes at its monitor's position even when that monitor
	// ended in between.
	cursor := *runList(t, env, `{"limit":3}`).NextCursor
	rt.items = append(rt.items[:3:3], rt.items[4:]...) // m003 ended
	if ids := listIDs(t, runList(t, env, `{"limit":3,"cursor":"`+cursor+`"}`)); fmt.Sprint(ids) != "[m004 m005 m006]" {
		t.Errorf("after an ended monitor the page holds %v", ids)
	}
}

func TestMonitorsListReplyBound(t *testing.T) {
	rt := &fakeRuntime{items: monitorItems(200)}
	one, _ := json.Marshal(rt.items[0])
	env := monitorEnv(rt)
	env.MaxReplyBytes = 30 * len(one)
	var got []string
	l := runList(t, env, `{"all":true}`)
	for {
		if l.NextCursor != nil && !l.Truncated {
			t.Fatalf("a page cut by the bound must say truncated: %+v", l)
		}
		if len(l.Items) == 0 {
			t.Fatal("empty page")
		}
		got = append(got, listIDs(t, l)...)
		if l.NextCursor == nil {
			break
		}
		l = runList(t, env, `{"all":true,"cursor":"`+*l.NextCursor+`"}`)
	}
	if len(got) != 200 || got[0] != "m000" || got[199] != "m199" {
		t.Errorf("walked %d items", len(got))
	}
	env.MaxReplyBytes = len(one) // not even the envelope fits
	if _, err := action(t, ActionMonitorsList).Handle(context.Background(), env, []byte(`{}`)); AsError(err) == nil || AsError(err).Code != CodeTooLarge {
		t.Errorf("one item over the bound: %v, want 413", err)
	}
}

func TestMonitorsListRequest(t *testing.T) {
	env := monitorEnv(&fakeRuntime{items: monitorItems(2)})
	for _, data := range []string{`{"cursor":"x"}`, `{"cursor":"12."}`, `{"cursor":"abc.m1"}`, `{"limit":0}`, `{"limit":1001}`, `{"monitorId":"m1"}`} {
		_, err := action(t, ActionMonitorsList).Handle(context.Background(), env, []byte(data))
		if e := AsError(err); e == nil || e.Code != CodeInvalid {
			t.Errorf("%s: %v, want a 400", data, err)
		}
	}
}
