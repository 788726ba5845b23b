package handlers

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// restrictionsPost answers POST /restrictions with a created entry per
// call, or with answers[osType] when set.
func restrictionsPost(t *testing.T, c *console, answers map[string]func(w http.ResponseWriter)) {
	t.Helper()
	n := 0
	c.handle("POST /restrictions", func(w http.ResponseWriter, _ *http.Request, cl call) {
		var b struct {
			Data struct {
				Value  string `json:"value"`
				OSType string `json:"osType"`
			} `json:"data"`
		}
		if err := json.Unmarshal(cl.Body, &b); err != nil {
			t.Errorf("POST /restrictions body %s: %v", cl.Body, err)
		}
		if a := answers[b.Data.OSType]; a != nil {
			a(w)
			return
		}
		n++
		writeJSON(w, 200, `{"data":[`+restrictionJSON(id(100+n), b.Data.Value, b.Data.OSType)+`],"errors":null}`)
	})
}

func duplicate(w http.ResponseWriter) {
	writeJSON(w, 400, `{"errors":[{"code":4000030,"title":"Already Exists Error","detail":"Blocklist item already exists"}]}`)
}

func TestBlocklistAdd(t *testing.T) {
	c := newConsole(t)
	restrictionsPost(t, c, map[string]func(http.ResponseWriter){"macos": duplicate})
	var got struct {
		Items          []json.RawMessage `json:"items"`
		AlreadyPresent []string          `json:"alreadyPresent"`
	}
	mustRun(t, c.env(), ActionBlocklistAdd, `{"hash":"`+strings.ToUpper(sha1Hex)+`","sha256":"`+sha256Hex+`","description":"SOAR block"}`, &got)

	// One POST per default OS type, in order, each for the whole tenant.
	posts := c.callsTo("POST /restrictions")
	var oses []string
	for _, p := range posts {
		b := body(t, p)
		data, filter := b["data"].(map[string]any), b["filter"].(map[string]any)
		oses = append(oses, data["osType"].(string))
		if data["value"] != sha1Hex || data["sha256Value"] != sha256Hex || data["type"] != "black_hash" || data["description"] != "SOAR block" {
			t.Errorf("data %v", data)
		}
		if asJSON(filter) != `{"tenant":true}` {
			t.Errorf("filter %v, want the tenant by default", filter)
		}
	}
	if !slices.Equal(oses, []string{"windows", "macos", "linux"}) {
		t.Errorf("POSTs for %v", oses)
	}
	// The duplicate is not an error: macos is reported as already present.
	if !slices.Equal(got.AlreadyPresent, []string{"macos"}) || len(got.Items) != 2 {
		t.Fatalf("reply items %d alreadyPresent %v", len(got.Items), got.AlreadyPresent)
	}
	if !sameJSON(t, got.Items[1], []byte(restrictionJSON(id(102), sha1Hex, "linux"))) {
		t.Errorf("item %s is not the console's entry", got.Items[1])
	}
}

func TestBlocklistAddScopeAndOSTypes(t *testing.T) {
	c := newConsole(t)
	restrictionsPost(t, c, nil)
	b := mustRun(t, c.env(), ActionBlocklistAdd, `{"hash":"`+sha1Hex+`","osTypes":["windows_legacy"],"scope":{"siteIds":["`+id(7)+`"]}}`, nil)
	posts := c.callsTo("POST /restrictions")
	if len(posts) != 1 {
		t.Fatalf("%d POSTs", len(posts))
	}
	got := body(t, posts[0])
	if asJSON(got["filter"]) != `{"siteIds":["`+id(7)+`"]}` || got["data"].(map[string]any)["osType"] != "windows_legacy" {
		t.Errorf("body %s", posts[0].Body)
	}
	if _, ok := got["data"].(map[string]any)["sha256Value"]; ok {
		t.Errorf("sha256Value sent without a sha256: %s", posts[0].Body)
	}
	if !strings.Contains(string(b), `"alreadyPresent":[]`) {
		t.Errorf("reply %s: alreadyPresent must be an empty array, not null", b)
	}
}

func TestBlocklistAddAllPresent(t *testing.T) {
	c := newConsole(t)
	restrictionsPost(t, c, map[string]func(http.ResponseWriter){"windows": duplicate, "macos": duplicate, "linux": duplicate})
	b := mustRun(t, c.env(), ActionBlocklistAdd, `{"hash":"`+sha1Hex+`"}`, nil)
	if string(b) != `{"items":[],"alreadyPresent":["windows","macos","linux"]}` {
		t.Errorf("reply %s", b)
	}
}

// TestBlocklistAddPartialFailure: when one OS fails after others were
// blocked, the error says which.
func TestBlocklistAddPartialFailure(t *testing.T) {
	c := newConsole(t)
	restrictionsPost(t, c, map[string]func(http.ResponseWriter){
		"macos": duplicate,
		"linux": func(w http.ResponseWriter) {
			writeJSON(w, 500, `{"errors":[{"code":5000010,"title":"Server Error","detail":null}]}`)
		},
	})
	_, err := run(t, c.env(), ActionBlocklistAdd, `{"hash":"`+sha1Hex+`"}`)
	if err == nil || err.Code != CodeUpstream || !err.Retryable || err.UpstreamStatus != 500 {
		t.Fatalf("err %+v", err)
	}
	d, ok := err.Details.(*PartialDetails)
	if !ok {
		t.Fatalf("details %T", err.Details)
	}
	if asJSON(d) != `{"applied":{"created":["windows"],"alreadyPresent":["macos"]},"failed":"osType linux","upstream":{"operation":"POST /restrictions","requestId":"rqid-3","upstreamCode":5000010,"attempts":1}}` {
		t.Errorf("details %s", asJSON(d))
	}
	if !strings.Contains(err.Message, "windows, macos") || !strings.Contains(err.Message, "osType linux failed") {
		t.Errorf("message %q", err.Message)
	}
}

// TestBlocklistAddFirstFails: nothing applied, the plain upstream error.
func TestBlocklistAddFirstFails(t *testing.T) {
	c := newConsole(t)
	c.answer("POST /restrictions", 400, `{"errors":[{"code":4000010,"title":"Validation Error","detail":"Cannot find blocklist or exclusion for the requested scope [`+id(7)+`]"}]}`)
	_, err := run(t, c.env(), ActionBlocklistAdd, `{"hash":"`+sha1Hex+`","scope":{"siteIds":["`+id(7)+`"]}}`)
	if err == nil || err.Code != CodeInvalid || !strings.Contains(err.Message, "Cannot find blocklist or exclusion for the requested scope") {
		t.Fatalf("err %+v", err)
	}
	if _, partial := err.Details.(*PartialDetails); partial {
		t.Errorf("details %s: nothing was applied", asJSON(err.Details))
	}
	if n := len(c.Calls()); n != 1 {
		t.Errorf("%d calls: the remaining OS types must not be tried after a failure", n)
	}
}
