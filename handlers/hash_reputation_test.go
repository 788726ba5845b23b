package handlers

import (
	"net/http"
	"strings"
	"testing"
)

func TestHashReputation(t *testing.T) {
	verdictPath := "GET /hashes/" + sha1Hex + "/verdict"
	reputationPath := "GET /hashes/" + sha1Hex + "/reputation"
	cases := []struct {
		name            string
		verdict, legacy func(c *console)
		want            string
		wantCode        int
		wantCalls       []string
	}{
		{
			name:      "verdict",
			verdict:   func(c *console) { c.answer(verdictPath, 200, `{"data":{"verdict":"malicious"}}`) },
			want:      `{"hash":"` + sha1Hex + `","verdict":"malicious","rank":null}`,
			wantCalls: []string{verdictPath},
		},
		{
			name: "legacy rank when verdict is 404",
			verdict: func(c *console) {
				c.answer(verdictPath, 404, `{"errors":[{"code":4040010,"title":"Requested resource was not found","detail":""}]}`)
			},
			legacy:    func(c *console) { c.answer(reputationPath, 200, `{"data":{"rank":"7"}}`) },
			want:      `{"hash":"` + sha1Hex + `","verdict":"malicious","rank":7}`,
			wantCalls: []string{verdictPath, reputationPath},
		},
		{
			name:      "legacy without rank",
			verdict:   func(c *console) { c.answer(verdictPath, 404, `404 page not found`) },
			legacy:    func(c *console) { c.answer(reputationPath, 200, `{"data":{}}`) },
			want:      `{"hash":"` + sha1Hex + `","verdict":"unknown","rank":null}`,
			wantCalls: []string{verdictPath, reputationPath},
		},
		{
			name:      "neither endpoint",
			wantCode:  CodeUpstream,
			wantCalls: []string{verdictPath, reputationPath},
		},
		{
			name:      "verdict fails otherwise: no fallback",
			verdict:   func(c *console) { c.answer(verdictPath, 503, `<html><title>503 Service Unavailable</title></html>`) },
			wantCode:  CodeUpstream,
			wantCalls: []string{verdictPath},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newConsole(t)
			if tc.verdict != nil {
				tc.verdict(c)
			}
			if tc.legacy != nil {
				tc.legacy(c)
			}
			// The hash is lower-cased before use.
			b, err := run(t, c.env(), ActionHashReputation, `{"hash":"`+strings.ToUpper(sha1Hex)+`"}`)
			switch {
			case tc.wantCode != 0 && (err == nil || err.Code != tc.wantCode):
				t.Errorf("err %v, want code %d", err, tc.wantCode)
			case tc.wantCode == 0 && err != nil:
				t.Errorf("err %v", err)
			case tc.wantCode == 0 && string(b) != tc.want:
				t.Errorf("reply %s\nwant  %s", b, tc.want)
			}
			var got []string
			for _, cl := range c.Calls() {
				got = append(got, cl.Method+" "+cl.Path)
			}
			if strings.Join(got, ",") != strings.Join(tc.wantCalls, ",") {
				t.Errorf("calls %v, want %v", got, tc.wantCalls)
			}
		})
	}
}

func TestHashReputationNeitherMessage(t *testing.T) {
	c := newConsole(t)
	_, err := run(t, c.env(), ActionHashReputation, `{"hash":"`+sha1Hex+`"}`)
	if err == nil || err.Code != CodeUpstream || err.UpstreamStatus != http.StatusNotFound || err.Retryable {
		t.Fatalf("err %+v", err)
	}
	if !strings.Contains(err.Message, "neither") {
		t.Errorf("message %q", err.Message)
	}
}
