package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// fuzzActions is every action the connector serves.
func fuzzActions() []Action { return All() }

// fuzzSeeds are request bodies per action: the README's examples, and the
// shapes that have gone wrong in requests before (wrong types, bounds,
// case-folded names, trailing data, nesting).
var fuzzSeeds = map[string][]string{
	ActionHashReputation:   {`{"hash":"3395856ce81f2b7382dee72602f798b642f14140"}`, `{"hash":"3395856CE81F2B7382DEE72602F798B642F14140"}`, `{"hash":12}`, `{"hash":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}`},
	ActionBlocklistAdd:     {`{"hash":"3395856ce81f2b7382dee72602f798b642f14140","osTypes":["windows"],"description":"SOAR case 42"}`, `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","scope":{"siteIds":["225494730938493804"]}}`, `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","osTypes":[]}`, `{"hash":"3395856ce81f2b7382dee72602f798b642f14140","scope":{"tenant":true,"groupIds":["225494730938493804"]}}`},
	ActionBlocklistList:    {`{"hash":"3395856ce81f2b7382dee72602f798b642f14140"}`, `{"osTypes":["linux","linux"]}`, `{"limit":1000,"all":true}`},
	ActionBlocklistDelete:  {`{"hash":"3395856ce81f2b7382dee72602f798b642f14140"}`, `{"ids":["1559342436290084702"]}`, `{"ids":[]}`},
	ActionThreatsList:      {`{"incidentStatuses":["unresolved"],"computerName":"FIN","limit":10}`, `{"createdAfter":"2024-05-01T08:00:00Z","createdBefore":"2024-05-01T07:00:00Z"}`, `{"sortBy":"createdAt","sortOrder":"asc","cursor":"YWdlbnRJZDoxMjM="}`, `{"query":"x'; DROP TABLE threats;--"}`},
	ActionThreatsUpdate:    {`{"threatIds":["1938475610293847561"],"incidentStatus":"resolved","analystVerdict":"true_positive"}`, `{"threatIds":["1938475610293847561"]}`, `{"threatIds":["12"],"analystVerdict":"suspicious"}`},
	ActionGroupsList:       {`{"type":"static"}`, `{"siteIds":["225494730938493804"],"name":"$(reboot)"}`},
	ActionAgentsList:       {`{"ip":"10.1.2.3"}`, `{"ip":"::1"}`, `{"isActive":"true"}`, `{"networkStatuses":["connected"],"osTypes":["macos"],"limit":0}`},
	ActionAgentsConnect:    {`{"agentIds":["1559342436290084702"]}`, `{"agentIds":[1559342436290084702]}`},
	ActionAgentsDisconnect: {`{"agentIds":["1559342436290084702"]}`, `{"agentIds":null}`},
	ActionSitesList:        {`{"state":"active"}`, `{"siteIds":["225494730938493804"],"query":"a,b"}`},
	ActionActivitiesList:   {`{"activityTypes":[27],"limit":20}`, `{"activityTypes":["27"],"sortOrder":"up"}`, `{"threatIds":["1938475610293847561"],"agentIds":["1559342436290084702"]}`},
	ActionAlertsList:       {`{"severities":["high","critical"],"incidentStatuses":["unresolved"]}`, `{"ruleName":"line\nbreak"}`},
	ActionAlertsUpdate:     {`{"alertIds":["1928374650192837465"],"analystVerdict":"true_positive","incidentStatus":"resolved"}`, `{"alertIds":["1928374650192837465"]}`},
	ActionUAMAlertsList: {`{"statuses":["new","in_progress"],"confidenceLevels":["informational"],"limit":500}`, `{"analystVerdicts":["true_positive"]}`,
		`{"ids":["00000000-0000-7000-8000-00000000a001"],"sortBy":"updatedAt","sortOrder":"asc","detectedAfter":"2026-05-01T08:00:00Z"}`, `{"severities":["unknown"]}`, `{"name":"mimi","assetName":"\u0007"}`},
	ActionUAMAlertsGet:      {`{"id":"00000000-0000-7000-8000-00000000a001"}`, `{"id":"1928374650192837465"}`, `{}`},
	ActionUAMAlertsUpdate:   {`{"alertIds":["00000000-0000-7000-8000-00000000a001"],"status":"resolved","analystVerdict":"false_positive_user_error"}`, `{"alertIds":["00000000-0000-7000-8000-00000000a001"],"status":"OPEN"}`},
	ActionUAMAlertsNotesAdd: {`{"alertIds":["00000000-0000-7000-8000-00000000a001"],"text":"line one\nline two"}`, `{"alertIds":["00000000-0000-7000-8000-00000000a001"],"text":""}`},
	ActionThreatsMonitor:    {`{"threatId":"1938475610293847561","timeout":"4h","pollInterval":"30s"}`, `{"threatId":"1938475610293847561","timeout":"-1s"}`, `{"threatId":"1938475610293847561","pollInterval":"1ns"}`},
	ActionMonitorsList:      {`{"limit":50}`, `{"cursor":"1714550400000000000.k3j7q2m5x8zp4wnb6cdf9htv"}`, `{"cursor":"garbage"}`},
	ActionMonitorsCancel:    {`{"monitorId":"k3j7q2m5x8zp4wnb6cdf9htv"}`, `{"monitorId":"a.b"}`},
	"ingest.status":         {``, `{}`, `null`},
	ActionThreatsMitigate:   {`{"threatIds":["1938475610293847561"],"action":"quarantine"}`, `{"threatIds":["1938475610293847561"],"action":"network_quarantine"}`, `{"threatIds":[],"action":"kill"}`},
	ActionThreatsNotesAdd:   {`{"threatIds":["1938475610293847561"],"text":"isolated by SOAR\ncase 42"}`, `{"threatIds":["1938475610293847561"],"text":"x"}`, `{"threatIds":["1938475610293847561"],"text":"\u0007bell"}`},
	ActionThreatsNotesList:  {`{"threatId":"1938475610293847561","limit":50}`, `{"threatId":""}`, `{"threatId":"../1"}`},
	ActionThreatsTimeline:   {`{"threatId":"1938475610293847561","activityTypes":[2011,2001],"sortOrder":"asc"}`, `{"threatId":"1938475610293847561","activityTypes":[0]}`},
	ActionThreatsFetchFile:  {`{"threatIds":["1938475610293847561"],"password":"Zip-Pass-2024!x"}`, `{"threatIds":["1938475610293847561"],"password":"short"}`, `{"threatIds":["1938475610293847561"],"Password":"Zip-Pass-2024!x"}`, `{"threatIds":["1938475610293847561"],"password":7}`},
	ActionAgentsScanStart:   {`{"agentIds":["1559342436290084702"]}`, `{"agentIds":[]}`},
	ActionAgentsScanAbort:   {`{"agentIds":["1559342436290084702"]}`, `{"agentIds":["x"]}`},
	ActionAgentsCount:       {`{"networkStatuses":["disconnected"]}`, `{"ip":"10.1.2.3"}`, `{"limit":5}`, `{}`},
}

// fuzzCommon are bodies every action is seeded with.
var fuzzCommon = []string{
	`{}`, ` `, `null`, `[]`, `"x"`, `{"limit":-1}`, `{"limit":1001}`, `{"Limit":5}`, `{"limit":5,"limit":6}`,
	`{"nope":1}`, `{} {}`, `{"a":{"b":{"c":[[[[{}]]]]}}}`, `{"limit":1e400}`, `{"cursor":"\u0000"}`, `{`,
}

// FuzzRequest decodes and validates request bodies the way the dispatcher
// has them decoded: Action.Handle, which Define builds from decodeStrict
// (one JSON object, unknown and case-folded names refused, no trailing data)
// and the request type's Validate. name picks the action (an unknown name
// picks one by its first byte, so mutated names still exercise something).
//
// Properties, for every action and body:
//   - nothing panics;
//   - decoding either gives a valid typed request or a *Error with code 400
//     or 413 whose message names a field ("field: reason");
//   - Action.Handle agrees: a refused body is refused by Handle with the same
//     code and message, and without any call to SentinelOne (the client's
//     transport counts calls); an accepted one is run (mutating actions in
//     dry-run mode reply with the very request decoded here);
//   - an accepted request encoded with encoding/json decodes and validates
//     again to the same request (Validate's normalisation is idempotent, so
//     a request logged or echoed by a dry run can be sent again).
func FuzzRequest(f *testing.F) {
	actions := fuzzActions()
	for _, a := range actions {
		for _, body := range append(fuzzSeeds[a.Name], fuzzCommon...) {
			f.Add(a.Name, []byte(body))
		}
	}
	for _, a := range actions {
		if _, ok := fuzzSeeds[a.Name]; !ok {
			f.Fatalf("no seeds for action %s", a.Name)
		}
	}
	calls := new(atomic.Int64)
	client, err := sentinelone.New(sentinelone.Config{
		BaseURL: "http://console.invalid", Token: "fuzz-token", RetryMax: -1, RatePerSecond: 1e9, RateBurst: 1 << 30,
	}, sentinelone.WithTransport(emptyConsole{calls}))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		a, ok := pickAction(actions, name)
		if !ok {
			return
		}
		req, err := decodeRequest(a, data)
		if err != nil {
			checkRequestError(t, a, data, err)
		}

		env := &Env{Console: "main", Client: client, DryRun: true, MaxReplyBytes: 1 << 20}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		before := calls.Load()
		res, herr := a.Handle(ctx, env, data)
		if err != nil {
			want, got := AsError(err), AsError(herr)
			if herr == nil || got.Code != want.Code || got.Message != want.Message {
				t.Fatalf("%s %q: decoding says %v, Handle says %v", a.Name, data, err, herr)
			}
			if n := calls.Load() - before; n != 0 {
				t.Fatalf("%s %q: refused (%v) but %d call(s) reached SentinelOne", a.Name, data, err, n)
			}
			return
		}
		if herr != nil {
			if e := AsError(herr); e.Code == CodeInvalid && calls.Load() == before && !strings.Contains(e.Message, ": ") {
				t.Fatalf("%s %q: Handle refused an accepted request with a 400 naming no field: %v", a.Name, data, herr)
			}
		}
		if a.Mutating {
			dr, ok := res.(*DryRunReply)
			if !ok || herr != nil {
				t.Fatalf("%s %q: dry run gave %T %v, want *DryRunReply", a.Name, data, res, herr)
			}
			if !reflect.DeepEqual(dr.Request, req) {
				t.Fatalf("%s %q: dry run echoes %+v, decoding gave %+v", a.Name, data, dr.Request, req)
			}
		}

		enc, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("%s: cannot encode accepted request %+v: %v", a.Name, req, err)
		}
		if a.HasSecrets() {
			// A request with a secret encodes with the secret redacted, so
			// it cannot be sent again as it is: it must not show the secret
			// instead (nor in the dry run's reply, nor in fmt).
			shown := string(enc) + fmt.Sprintf("%v %+v %#v", req, req, req)
			if dr, ok := res.(*DryRunReply); ok {
				b, _ := json.Marshal(dr)
				shown += string(b)
			}
			for _, secret := range secretValues(req) {
				if secret != "" && strings.Contains(shown, secret) {
					t.Fatalf("%s %q: the secret shows: %s", a.Name, data, shown)
				}
			}
			return
		}
		again, err := decodeRequest(a, enc)
		if err != nil {
			t.Fatalf("%s %q: accepted, but its encoding %s is refused: %v", a.Name, data, enc, err)
		}
		if enc2, _ := json.Marshal(again); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s %q: encoding not stable through decoding:\n first %s\nsecond %s", a.Name, data, enc, enc2)
		}
	})
}

// pickAction returns the action called name, or one chosen by its first
// byte; false for an empty name.
func pickAction(actions []Action, name string) (Action, bool) {
	for _, a := range actions {
		if a.Name == name {
			return a, true
		}
	}
	if name == "" {
		return Action{}, false
	}
	return actions[int(name[0])%len(actions)], true
}

// decodeRequest is the first half of the handler Define builds: a new
// request of a's type, decoded strictly and validated.
func decodeRequest(a Action, data []byte) (any, error) {
	req := reflect.New(reflect.TypeOf(a.Request)).Interface()
	if err := decodeStrict(data, req); err != nil {
		return nil, err
	}
	if v, ok := req.(validator); ok {
		if err := v.Validate(); err != nil {
			return nil, err
		}
	}
	if err := checkTargets(&Env{Console: "main"}, req); err != nil {
		return nil, err
	}
	return req, nil
}

// secretValues returns the values of the Secret fields of req, a pointer to
// a request struct.
func secretValues(req any) []string {
	var out []string
	v := reflect.ValueOf(req).Elem()
	for _, f := range reflect.VisibleFields(v.Type()) {
		if f.Type == reflect.TypeFor[Secret]() {
			out = append(out, v.FieldByIndex(f.Index).Interface().(Secret).Reveal())
		}
	}
	return out
}

// checkRequestError fails t unless err is what a refused request gets.
func checkRequestError(t *testing.T, a Action, data []byte, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s %q: error %v (%T) is not a *handlers.Error", a.Name, data, err, err)
	}
	if e.Code != CodeInvalid && e.Code != CodeTooLarge {
		t.Fatalf("%s %q: code %d, want 400 or 413: %v", a.Name, data, e.Code, e)
	}
	if e.Retryable {
		t.Fatalf("%s %q: a refused request is marked retryable: %v", a.Name, data, e)
	}
	// The field may be "": a member named "" is an unknown field too.
	if _, _, ok := strings.Cut(e.Message, ": "); !ok {
		t.Fatalf("%s %q: message %q is not \"field: reason\"", a.Name, data, e.Message)
	}
}

// emptyConsole answers every call with an empty list page and counts the
// calls: enough for every read-only handler to run to its reply or to a 502
// for a shape it did not expect.
type emptyConsole struct{ calls *atomic.Int64 }

func (c emptyConsole) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"data":[],"pagination":{"nextCursor":null,"totalItems":0}}`)),
		Request:    r,
	}, nil
}
