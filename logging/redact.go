package logging

import (
	"cmp"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/s1bridge/s1bridge/config"
)

// Redact returns a handler that passes every record to h with each
// occurrence of each secret replaced by config.Redacted: in the message, in
// attribute keys, in string values, inside groups (also those added by
// Logger.With and WithGroup), in errors' messages, in LogValuers' values,
// and in any other value whose fmt (%+v), text or JSON form holds a secret.
// Such a value is then logged as its redacted fmt form (an error stays an
// error). Clean values pass through unchanged.
//
// With no non-empty secrets Redact returns h itself, so the redaction costs
// nothing when there is nothing to hide. Secrets are matched as written and
// in their JSON- and Go-quoted forms; a secret split across two attributes
// is not found.
func Redact(h slog.Handler, secrets []string) slog.Handler {
	r := newRedactor(secrets)
	if r == nil {
		return h
	}
	return &redactHandler{next: h, r: r}
}

type redactHandler struct {
	next slog.Handler
	r    *redactor
}

// Enabled defers to the wrapped handler.
func (h *redactHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle redacts the record, copying it only when something changed.
func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	msg, changed := h.r.str(rec.Message)
	attrs := make([]slog.Attr, 0, rec.NumAttrs())
	rec.Attrs(func(a slog.Attr) bool {
		a, c := h.r.attr(a)
		changed = changed || c
		attrs = append(attrs, a)
		return true
	})
	if !changed {
		return h.next.Handle(ctx, rec)
	}
	out := slog.NewRecord(rec.Time, rec.Level, msg, rec.PC)
	out.AddAttrs(attrs...)
	return h.next.Handle(ctx, out)
}

// WithAttrs redacts attrs before the wrapped handler pre-formats them.
func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i], _ = h.r.attr(a)
	}
	return &redactHandler{next: h.next.WithAttrs(clean), r: h.r}
}

// WithGroup redacts the group name.
func (h *redactHandler) WithGroup(name string) slog.Handler {
	name, _ = h.r.str(name)
	return &redactHandler{next: h.next.WithGroup(name), r: h.r}
}

// redactor finds and replaces secrets. It is immutable, so handlers derived
// with WithAttrs and WithGroup share it.
type redactor struct {
	forms    []string // every form of every secret, longest first
	replacer *strings.Replacer
}

// newRedactor returns nil when there is no non-empty secret.
func newRedactor(secrets []string) *redactor {
	var forms []string
	add := func(s string) {
		if s != "" && !slices.Contains(forms, s) {
			forms = append(forms, s)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		add(s)
		// A value marshalled to JSON or quoted by %q carries the escaped
		// form of a secret holding quotes, backslashes or control bytes.
		if b, err := json.Marshal(s); err == nil {
			add(string(b[1 : len(b)-1]))
		}
		q := strconv.Quote(s)
		add(q[1 : len(q)-1])
	}
	if len(forms) == 0 {
		return nil
	}
	// strings.Replacer tries the olds in argument order at each position,
	// so the longest goes first: a secret that contains another is replaced
	// whole.
	slices.SortStableFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, config.Redacted)
	}
	return &redactor{forms: forms, replacer: strings.NewReplacer(pairs...)}
}

// str returns s redacted, and whether anything was replaced. The scan
// allocates nothing when s holds no secret, the common case.
func (r *redactor) str(s string) (string, bool) {
	if r.has(s) {
		return r.replacer.Replace(s), true
	}
	return s, false
}

func (r *redactor) attr(a slog.Attr) (slog.Attr, bool) {
	key, kc := r.str(a.Key)
	v, vc := r.value(a.Value)
	if !kc && !vc {
		return a, false
	}
	return slog.Attr{Key: key, Value: v}, true
}

func (r *redactor) value(v slog.Value) (slog.Value, bool) {
	switch v.Kind() {
	case slog.KindString:
		if s, c := r.str(v.String()); c {
			return slog.StringValue(s), true
		}
	case slog.KindGroup:
		attrs := v.Group()
		var out []slog.Attr
		for i, a := range attrs {
			if na, c := r.attr(a); c {
				if out == nil {
					out = slices.Clone(attrs)
				}
				out[i] = na
			}
		}
		if out != nil {
			return slog.GroupValue(out...), true
		}
	case slog.KindLogValuer:
		// A clean LogValuer is passed on unresolved, which keeps wrappers
		// such as tint's coloured values intact.
		if nv, c := r.value(v.Resolve()); c {
			return nv, true
		}
	case slog.KindAny:
		return r.any(v.Any())
	}
	return v, false
}

// any redacts a value that handlers print with fmt, MarshalText or
// json.Marshal, by checking each of those forms.
func (r *redactor) any(x any) (slog.Value, bool) {
	if x == nil {
		return slog.AnyValue(x), false
	}
	printed := fmt.Sprintf("%+v", x)
	dirty := r.has(printed)
	if err, ok := x.(error); ok {
		msg, c := r.str(err.Error())
		if c || dirty {
			return slog.AnyValue(redactedError(msg)), true
		}
		return slog.AnyValue(x), false
	}
	if bs, ok := x.([]byte); ok {
		dirty = dirty || r.has(string(bs))
		printed = string(bs)
	}
	if !dirty {
		if tm, ok := x.(encoding.TextMarshaler); ok {
			b, err := tm.MarshalText()
			dirty = err == nil && r.has(string(b))
		}
	}
	if !dirty {
		if jm, ok := x.(json.Marshaler); ok {
			b, err := jm.MarshalJSON()
			dirty = err == nil && r.has(string(b))
		}
	}
	if !dirty {
		return slog.AnyValue(x), false
	}
	s, _ := r.str(printed)
	return slog.StringValue(s), true
}

func (r *redactor) has(s string) bool {
	return slices.ContainsFunc(r.forms, func(f string) bool { return strings.Contains(s, f) })
}

// redactedError stands for an error whose message held a secret, so that
// handlers still log it as an error.
type redactedError string

func (e redactedError) Error() string { return string(e) }
