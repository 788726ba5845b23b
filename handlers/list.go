package handlers

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// Page sizes of list requests (DESIGN.md §4).
const (
	// DefaultLimit is the page size asked of SentinelOne when a list request
	// gives no limit.
	DefaultLimit = 100
	// MaxLimit is the largest limit a list request may give: SentinelOne's
	// largest page.
	MaxLimit = sentinelone.MaxLimit
	// maxCursorLen bounds a cursor: SentinelOne's are short base64 strings,
	// and a cursor ends up in a URL.
	maxCursorLen = 4096
)

// ListParams are the paging fields every list request embeds. Limit is the
// page size asked of SentinelOne (nil: DefaultLimit); Cursor resumes where a
// previous reply's nextCursor pointed; All follows cursors until the list
// ends or the reply would outgrow Env.MaxReplyBytes.
type ListParams struct {
	Limit  *int   `json:"limit,omitempty" jsonschema:"minimum=1,maximum=1000,default=100"`
	Cursor string `json:"cursor,omitempty" jsonschema:"maxLength=4096,pattern=^[^\\x00-\\x1f\\x7f-\\x9f]*$"`
	All    bool   `json:"all,omitempty"`
}

// Validate checks the paging fields: limit 1 to MaxLimit, a printable
// cursor of reasonable length.
func (p *ListParams) Validate() error {
	if p.Limit != nil && (*p.Limit < 1 || *p.Limit > MaxLimit) {
		return Invalid("limit", "must be between 1 and %d, not %d", MaxLimit, *p.Limit)
	}
	if len(p.Cursor) > maxCursorLen {
		return Invalid("cursor", "is %d bytes long; a SentinelOne cursor is at most %d", len(p.Cursor), maxCursorLen)
	}
	return checkText("cursor", p.Cursor)
}

// PageSize is the page size to ask SentinelOne for.
func (p *ListParams) PageSize() int {
	if p.Limit == nil {
		return DefaultLimit
	}
	return *p.Limit
}

// ListReply is the reply of every list action (DESIGN.md §4). Items are the
// SentinelOne objects as the console returned them; NextCursor is null on
// the last page. Truncated is true when the reply size bound, not the end
// of the list or the limit, decided where the reply stops: NextCursor then
// resumes at the first item left out.
type ListReply struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"nextCursor" jsonschema:"nullable"`
	TotalItems int               `json:"totalItems"`
	Truncated  bool              `json:"truncated"`
}

// rawPage is one page of a list, reduced to what the reply needs.
type rawPage struct {
	items []json.RawMessage // each item as the console sent it
	next  string            // "" on the last page
	total int
	extra json.RawMessage // a member the reply carries beside items (sites' allSites), or nil
}

// lister fetches one page of at most limit items from cursor ("" for the
// first page), with the request's filters.
type lister func(ctx context.Context, limit int, cursor string) (*rawPage, error)

// pageOf adapts a client page; raw returns an item's console bytes.
func pageOf[T any](p *sentinelone.Page[T], raw func(*T) json.RawMessage) *rawPage {
	items := make([]json.RawMessage, len(p.Items))
	for i := range p.Items {
		items[i] = raw(&p.Items[i])
	}
	return &rawPage{items: items, next: p.NextCursor, total: p.TotalItems}
}

// encodeItem returns raw as the reply will carry it. The client has already
// decoded (so validated) every item; the reply appends the bytes as they are
// (see ListReply.AppendJSON), so the size known here is the size sent.
func encodeItem(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, &Error{Code: CodeUpstream, Message: "SentinelOne sent an empty list item"}
	}
	return raw, nil
}

// AppendJSON appends r's JSON encoding to b without re-reading the items:
// they are SentinelOne's bytes, already validated by the client. The
// connector uses it instead of json.Marshal, which would scan and compact a
// whole page of items once more on every reply.
func (r *ListReply) AppendJSON(b []byte) []byte {
	b = append(b, `{"items":[`...)
	for i, it := range r.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, `],"nextCursor":`...)
	if r.NextCursor == nil {
		b = append(b, "null"...)
	} else {
		c, _ := json.Marshal(*r.NextCursor)
		b = append(b, c...)
	}
	b = append(b, `,"totalItems":`...)
	b = strconv.AppendInt(b, int64(r.TotalItems), 10)
	b = append(b, `,"truncated":`...)
	b = strconv.AppendBool(b, r.Truncated)
	return append(b, '}')
}

// SizeHint returns at least the length AppendJSON writes, so that the reply
// is encoded into one buffer of the right size: a page of items is tens or
// hundreds of kilobytes, and growing a buffer to fit copies it again.
func (r *ListReply) SizeHint() int {
	n := len(`{"items":[],"nextCursor":null,"totalItems":-9223372036854775808,"truncated":false}`) + len(r.Items)
	for _, it := range r.Items {
		n += len(it)
	}
	if r.NextCursor != nil {
		n += 6 * len(*r.NextCursor) // quoted; an escape (\u003c) is at most 6 bytes a byte
	}
	return n + 64
}

// replyBudget measures a list reply against Env.MaxReplyBytes.
type replyBudget struct {
	max      int    // 0: unbounded
	extraKey string // JSON name of rawPage.extra in the reply
}

// overhead is the encoded size of a reply with no items.
func (b replyBudget) overhead(next string, total int, extra json.RawMessage) int {
	env := ListReply{Items: []json.RawMessage{}, NextCursor: cursorPtr(next), TotalItems: total}
	enc, _ := json.Marshal(env) // cannot fail: no user types inside
	n := len(enc)
	if b.extraKey != "" {
		n += len(`,"":`) + len(b.extraKey) + max(len(extra), len("null"))
	}
	return n
}

// fit returns how many of items fit after the n already taken (using used
// bytes), with the page's own cursor, total and extra in the envelope.
func (b replyBudget) fit(n, used int, p *rawPage, items []json.RawMessage) int {
	if b.max <= 0 {
		return len(items)
	}
	avail := b.max - b.overhead(p.next, p.total, p.extra) - used
	fits := 0
	for _, it := range items {
		need := len(it)
		if n+fits > 0 {
			need++ // the comma
		}
		if need > avail {
			break
		}
		avail -= need
		fits++
	}
	return fits
}

// collect runs a list request: one page, or with All every page until the
// list ends or the next page would push the reply past Env.MaxReplyBytes.
//
// The connector never invents a cursor, so a reply only ever stops at a page
// boundary SentinelOne drew: when a page does not fit behind the items
// already taken, the reply ends with the cursor that fetched that page; when
// even the first page does not fit on its own, the same cursor is asked
// again for only as many items as fit (measured on the page that did not),
// and a single item larger than the bound is a 413.
//
// It returns the reply and the extra member of the last page taken.
func collect(ctx context.Context, env *Env, p ListParams, extraKey string, fetch lister) (*ListReply, json.RawMessage, error) {
	budget := replyBudget{max: env.MaxReplyBytes, extraKey: extraKey}
	reply := &ListReply{Items: []json.RawMessage{}}
	var extra json.RawMessage
	limit, cursor := p.PageSize(), p.Cursor
	used := 0 // encoded bytes of the items taken, commas included
	shrunk := false
	// The cursors followed so far: a console that hands one out again
	// would loop. The first page's cursor is "" only when there is none.
	seen := map[string]bool{}
	if cursor != "" {
		seen[cursor] = true
	}
	for {
		page, err := fetch(ctx, limit, cursor)
		if err != nil {
			return nil, nil, err
		}
		items := make([]json.RawMessage, len(page.items))
		for i, raw := range page.items {
			if items[i], err = encodeItem(raw); err != nil {
				return nil, nil, err
			}
		}
		if page.extra != nil {
			if page.extra, err = encodeItem(page.extra); err != nil {
				return nil, nil, err
			}
		}
		n := budget.fit(len(reply.Items), used, page, items)
		if n < len(items) {
			if len(reply.Items) > 0 {
				// A later page that does not fit: stop before it, and let
				// the caller fetch it with the cursor that fetched it here.
				reply.NextCursor, reply.Truncated = cursorPtr(cursor), true
				return reply, extra, nil
			}
			if n == 0 {
				return nil, nil, Errorf(CodeTooLarge, "reply too large: the first item SentinelOne returned is %d bytes, more than the %d bytes a reply may hold", len(items[0]), budget.max)
			}
			env.log().LogAttrs(ctx, slog.LevelDebug, "list page too large for one reply; asking SentinelOne for a smaller page",
				slog.Int("limit", limit), slog.Int("fits", n), slog.Int("maxReplyBytes", budget.max))
			limit, shrunk = n, true
			continue
		}
		for _, it := range items {
			if len(reply.Items) > 0 {
				used++
			}
			used += len(it)
			reply.Items = append(reply.Items, it)
		}
		reply.TotalItems, extra = page.total, page.extra
		// After a shrunk page the reply is as full as the bound allows:
		// the next item did not fit, so the next page would not either.
		if !p.All || page.next == "" || len(items) == 0 || shrunk || seen[page.next] {
			if page.next != "" && seen[page.next] {
				env.log().LogAttrs(ctx, slog.LevelWarn, "SentinelOne repeated a cursor; list stopped", slog.String("cursor", page.next))
				page.next = ""
			}
			reply.NextCursor, reply.Truncated = cursorPtr(page.next), shrunk && page.next != ""
			return reply, extra, nil
		}
		seen[page.next] = true
		cursor = page.next
	}
}

// cursorPtr returns nil for "" (the last page) and &s otherwise.
func cursorPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// log returns the environment's logger, or one that discards.
func (env *Env) log() *slog.Logger {
	if env.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return env.Logger
}
