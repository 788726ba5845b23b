package middleware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/handlers"
)

func TestChainOrder(t *testing.T) {
	var seen []string
	mw := func(name string) Middleware {
		return func(next HandlerFunc) HandlerFunc {
			return func(ctx context.Context, req *Request) ([]byte, error) {
				seen = append(seen, name+" in")
				data, err := next(ctx, req)
				seen = append(seen, name+" out")
				return data, err
			}
		}
	}
	h := Chain(func(context.Context, *Request) ([]byte, error) { seen = append(seen, "handler"); return nil, nil }, mw("a"), mw("b"))
	if _, err := h(context.Background(), &Request{}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a in", "b in", "handler", "b out", "a out"}; !slices.Equal(seen, want) {
		t.Errorf("order %v, want %v", seen, want)
	}
}

func request() *Request {
	return &Request{
		Action: handlers.Action{Name: "test.x"}, Env: &handlers.Env{Console: "main"},
		Msg: &nats.Msg{Subject: "s1.main.action.test.x", Reply: "_INBOX.1"}, Received: time.Now(),
	}
}

func TestRecoverAnswers500(t *testing.T) {
	h := Chain(func(context.Context, *Request) ([]byte, error) { panic("bug") }, Recover(slog.New(slog.DiscardHandler)))
	_, err := h(context.Background(), request())
	if e := handlers.AsError(err); e == nil || e.Code != handlers.CodeInternal {
		t.Fatalf("a panic answered %v, want a 500", err)
	}
}

// TestDeadline: the work gets the earlier of the action timeout and the
// request's expirytime (less the reply margin); an error the deadline
// caused is a 504, one the connector's stop caused a 503, others stay.
func TestDeadline(t *testing.T) {
	block := func(ctx context.Context, _ *Request) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() }
	req := request()
	start := time.Now()
	_, err := Chain(block, Deadline(100*time.Millisecond))(context.Background(), req)
	if e := handlers.AsError(err); e.Code != handlers.CodeUpstreamTimeout || !e.Retryable {
		t.Errorf("deadline passed: %v, want a retryable 504", err)
	}
	if took := time.Since(start); took < 90*time.Millisecond || took > 2*time.Second {
		t.Errorf("work stopped after %s, want the 100ms action timeout", took)
	}
	req = request()
	req.Event.Extensions = map[string]string{"expirytime": time.Now().Add(500 * time.Millisecond).UTC().Format(time.RFC3339Nano)}
	start = time.Now()
	_, _ = Chain(block, Deadline(time.Minute))(context.Background(), req)
	if took := time.Since(start); took > 450*time.Millisecond {
		t.Errorf("work stopped after %s, want before the 500ms expirytime", took)
	}
	stopping, stop := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); stop() }()
	_, err = Chain(block, Deadline(time.Minute))(stopping, request())
	if e := handlers.AsError(err); e.Code != handlers.CodeUnavailable || !e.Retryable {
		t.Errorf("stopped: %v, want a retryable 503", err)
	}
	denied := errors.New("boom")
	_, err = Chain(func(context.Context, *Request) ([]byte, error) {
		return nil, handlers.Errorf(handlers.CodeNotFound, "no %v", denied)
	}, Deadline(time.Minute))(context.Background(), request())
	if e := handlers.AsError(err); e.Code != handlers.CodeNotFound {
		t.Errorf("a 404 became %v", err)
	}
}

// TestAdmit: what Admit refuses, in order, before the action runs.
func TestAdmit(t *testing.T) {
	ran := false
	h := Chain(func(context.Context, *Request) ([]byte, error) { ran = true; return nil, nil }, Admit)
	for _, tc := range []struct {
		name string
		edit func(*Request)
		code int
	}{
		{"no reply subject", func(r *Request) { r.Msg.Reply = "" }, handlers.CodeInvalid},
		{"type of another action", func(r *Request) { r.Event.Type = "s1bridge.agents.list.request" }, handlers.CodeInvalid},
		{"expired", func(r *Request) {
			r.Event.Extensions = map[string]string{"expirytime": time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)}
		}, handlers.CodeExpired},
		{"denied", func(r *Request) { r.Denied = true }, handlers.CodeDenied},
		{"admitted", func(r *Request) { r.Event.Type = "com.example.other" }, 0},
	} {
		ran = false
		req := request()
		tc.edit(req)
		_, err := h(context.Background(), req)
		if tc.code == 0 {
			if err != nil || !ran {
				t.Errorf("%s: %v, ran %t", tc.name, err, ran)
			}
			continue
		}
		if e := handlers.AsError(err); e == nil || e.Code != tc.code || ran {
			t.Errorf("%s: %v (ran %t), want %d", tc.name, err, ran, tc.code)
		}
	}
}

// TestBeforeAndAfter: Invoke runs the action only once every Before write
// is stored, in order, and Respond waits for the After writes before it
// sends, even when the request's context has ended.
func TestBeforeAndAfter(t *testing.T) {
	var seen []string
	write := func(name string, err error) func(context.Context) error {
		return func(context.Context) error { seen = append(seen, name); return err }
	}
	action := handlers.Define("test.x", "", "", true, func(context.Context, *handlers.Env, *struct{}) (*struct{}, error) {
		seen = append(seen, "action")
		return &struct{}{}, nil
	})
	register := func(writes ...func(*Request)) Middleware {
		return func(next HandlerFunc) HandlerFunc {
			return func(ctx context.Context, req *Request) ([]byte, error) {
				for _, w := range writes {
					w(req)
				}
				data, err := next(ctx, req)
				seen = append(seen, "returned")
				return data, err
			}
		}
	}
	log := slog.New(slog.DiscardHandler)
	run := func(ctx context.Context, mw Middleware) (*Request, error) {
		seen = nil
		req := request()
		req.Action = action
		_, err := Chain(Invoke(log), Respond(log, 0), mw)(ctx, req)
		return req, err
	}

	req, err := run(context.Background(), register(
		func(r *Request) { r.Before(write("claim", nil)) },
		func(r *Request) { r.Before(write("requested", nil)) },
		func(r *Request) { r.After(write("completed", nil)) },
	))
	if err != nil || !req.Started() {
		t.Fatalf("err %v, started %t", err, req.Started())
	}
	if want := []string{"claim", "requested", "action", "returned", "completed"}; !slices.Equal(seen, want) {
		t.Errorf("order %v, want %v", seen, want)
	}

	refused := errors.New("audit stream unavailable")
	req, err = run(context.Background(), register(
		func(r *Request) { r.Before(write("claim", nil)) },
		func(r *Request) { r.Before(write("requested", refused)) },
		func(r *Request) { r.Before(write("never", nil)) },
	))
	if !errors.Is(err, refused) && handlers.AsError(err).Code != handlers.CodeInternal || req.Started() {
		t.Errorf("a failed Before write: err %v, started %t", err, req.Started())
	}
	if want := []string{"claim", "requested", "returned"}; !slices.Equal(seen, want) {
		t.Errorf("order %v, want %v (the action must not run)", seen, want)
	}

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	var waitedWith error
	_, _ = run(ended, register(func(r *Request) {
		r.After(func(ctx context.Context) error { waitedWith = ctx.Err(); seen = append(seen, "completed"); return nil })
	}))
	if !slices.Contains(seen, "completed") || waitedWith != nil {
		t.Errorf("After write with the request's context ended: ran %t, its context %v", slices.Contains(seen, "completed"), waitedWith)
	}
}

// TestAnswer: below Deadline, Request.Answer gives the error the caller
// will get (what the audit and idempotency records keep): a failure the
// deadline caused is the 504 Deadline answers, not the handler's 500.
func TestAnswer(t *testing.T) {
	var got *handlers.Error
	block := func(ctx context.Context, req *Request) ([]byte, error) {
		<-ctx.Done()
		err := fmt.Errorf("upstream call: %w", ctx.Err())
		got = req.Answer(err)
		return nil, err
	}
	_, err := Chain(block, Deadline(50*time.Millisecond))(context.Background(), request())
	if want := handlers.AsError(err); got == nil || got.Code != handlers.CodeUpstreamTimeout || got.Code != want.Code {
		t.Errorf("Answer %v, the reply %v: want both 504", got, err)
	}
	if r := request(); r.Answer(nil) != nil || r.Answer(handlers.Errorf(handlers.CodeNotFound, "x")).Code != handlers.CodeNotFound {
		t.Error("Answer without Deadline is not AsError")
	}
}

// TestWithAttrs: the request logger's records carry the request's
// attributes first, as log.With would write them, also through a further
// With or WithGroup; disabled levels stay disabled.
func TestWithAttrs(t *testing.T) {
	var buf strings.Builder
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	l := withAttrs(base, []slog.Attr{slog.String("console", "main"), slog.String("action", "agents.list")})
	l.Info("one", "k", 1)
	l.Debug("hidden")
	l.With("extra", true).Warn("two")
	l.WithGroup("g").Info("three", "k", 2)
	want := "level=INFO msg=one console=main action=agents.list k=1\n" +
		"level=WARN msg=two console=main action=agents.list extra=true\n" +
		"level=INFO msg=three console=main action=agents.list g.k=2\n"
	if buf.String() != want {
		t.Errorf("logged\n%s\nwant\n%s", buf.String(), want)
	}
	if l.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("debug enabled through withAttrs on an info logger")
	}
}

// TestReplyBuffers: only a read-only action's reply of a bounded size is
// encoded into a pooled buffer, and Release gives it back once: a mutating
// action's reply is kept by the idempotency layer as its stored outcome.
func TestReplyBuffers(t *testing.T) {
	read := &Request{Action: handlers.Action{Name: "x.list"}}
	if b := read.replyBuffer(100); cap(b) < 100 || read.buf == nil {
		t.Errorf("read-only reply: buffer of cap %d, pooled %t", cap(b), read.buf != nil)
	}
	read.Release()
	if read.buf != nil {
		t.Error("Release kept the buffer")
	}
	read.Release() // twice is harmless
	mutating := &Request{Action: handlers.Action{Name: "x.do", Mutating: true}}
	if b := mutating.replyBuffer(100); cap(b) < 100 || mutating.buf != nil {
		t.Errorf("mutating reply: buffer of cap %d, pooled %t", cap(b), mutating.buf != nil)
	}
	large := &Request{Action: handlers.Action{Name: "x.list"}}
	if b := large.replyBuffer(maxPooledReply + 1); cap(b) <= maxPooledReply || large.buf != nil {
		t.Errorf("large reply: buffer of cap %d, pooled %t", cap(b), large.buf != nil)
	}
}
