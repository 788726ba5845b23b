package handlers

import (
	"testing"
)

func TestAgentsConnectDisconnect(t *testing.T) {
	for action, path := range map[string]string{
		ActionAgentsConnect:    "POST /agents/actions/connect",
		ActionAgentsDisconnect: "POST /agents/actions/disconnect",
	} {
		t.Run(action, func(t *testing.T) {
			c := newConsole(t)
			c.answer(path, 200, `{"errors":[],"data":{"affected":2}}`)
			b := mustRun(t, c.env(), action, `{"agentIds":["`+id(1)+`","`+id(2)+`"]}`, nil)
			if string(b) != `{"affected":2}` {
				t.Errorf("reply %s", b)
			}
			calls := c.Calls()
			if len(calls) != 1 || calls[0].Method+" "+calls[0].Path != path {
				t.Fatalf("calls %+v", calls)
			}
			if !sameJSON(t, calls[0].Body, []byte(`{"filter":{"ids":["`+id(1)+`","`+id(2)+`"]},"data":{}}`)) {
				t.Errorf("body %s", calls[0].Body)
			}
		})
	}
}
