package middleware

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/s1bridge/s1bridge/handlers"
	"github.com/s1bridge/s1bridge/subjects"
)

// outcome is the code a request was answered with, 200 or the error's, and
// the error.
func outcome(err error) (int, *handlers.Error) {
	if err == nil {
		return 200, nil
	}
	herr := handlers.AsError(err)
	return herr.Code, herr
}

// Recover turns a panic below it into a 500 reply and an error log line
// with the stack: the process goes on serving.
func Recover(log *slog.Logger) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, req *Request) (data []byte, err error) {
			defer func() {
				if p := recover(); p != nil {
					log.Error("action panicked", "console", req.Env.Console, "action", req.Action.Name,
						"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
					data, err = nil, &handlers.Error{Code: handlers.CodeInternal, Message: "internal error while running " + req.Action.Name}
				}
			}()
			return next(ctx, req)
		}
	}
}

// Stats calls record with the outcome of every request and the time from
// its arrival to its reply (micro endpoint stats, metrics).
func Stats(record func(req *Request, code int, took time.Duration, herr *handlers.Error)) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, req *Request) ([]byte, error) {
			data, err := next(ctx, req)
			code, herr := outcome(err)
			record(req, code, time.Since(req.Received), herr)
			return data, err
		}
	}
}

// Logging logs every request's outcome ("action done"): at debug level, or
// at warn for a 5xx.
func Logging(log *slog.Logger) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, req *Request) ([]byte, error) {
			data, err := next(ctx, req)
			code, herr := outcome(err)
			level := slog.LevelDebug
			if code >= 500 {
				level = slog.LevelWarn
			}
			if log.Enabled(ctx, level) {
				attrs := []slog.Attr{
					slog.String("console", req.Env.Console), slog.String("action", req.Action.Name), slog.String("id", req.Event.ID),
					slog.Int("code", code), slog.Duration("took", time.Since(req.Received)),
				}
				if tp := req.Event.TraceParent(); tp != "" {
					attrs = append(attrs, slog.String(subjects.ExtTraceParent, tp))
				}
				if herr != nil {
					attrs = append(attrs, slog.String("error", herr.Error()))
				}
				log.LogAttrs(ctx, level, "action done", attrs...)
			}
			return data, err
		}
	}
}
