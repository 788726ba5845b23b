package connector_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/config"
	"github.com/s1bridge/s1bridge/connector"
	"github.com/s1bridge/s1bridge/emulator"
	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/internal/testenv"
)

// TestConcurrentListRepliesAreIntact: a read-only action's reply is encoded
// into a pooled buffer that a later reply reuses once this one is sent.
// Many callers asking at once for lists of different lengths must each get
// exactly the reply a lone caller gets: a buffer reused too early would mix
// two replies, or cut one short.
func TestConcurrentListRepliesAreIntact(t *testing.T) {
	const lists = 30
	env := testenv.Start(t, func(c *config.Config) {
		m := c.Consoles["main"]
		m.RateLimit.PerSecond, m.RateLimit.Burst = 100000, 100000
		c.Consoles["main"] = m
	}, emulator.WithSizes(emulator.Sizes{Sites: 1, GroupsPerSite: 1, Agents: lists}))
	subject := env.Connector.Subjects().Action("main", handlers.ActionAgentsList)
	request := func(n int) []byte { return fmt.Appendf(nil, `{"limit":%d}`, n) }
	want := make([][]byte, lists+1)
	for n := 1; n <= lists; n++ {
		r := env.Call(t, handlers.ActionAgentsList, string(request(n)))
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		want[n] = r.Event.Data
	}
	var wg sync.WaitGroup
	errs := make(chan error, lists)
	for c := range lists {
		wg.Go(func() {
			nc := testenv.Conn(t, env.Server)
			for i := range 20 {
				n := (c+i)%lists + 1
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				r, err := connector.Call(ctx, nc, subject, handlers.ActionAgentsList, "/test", request(n))
				cancel()
				if err == nil && r.Err != nil {
					err = r.Err
				}
				if err == nil && !bytes.Equal(r.Event.Data, want[n]) {
					err = fmt.Errorf("limit %d: a reply of %d bytes differs from the lone caller's (%d bytes)", n, len(r.Event.Data), len(want[n]))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
