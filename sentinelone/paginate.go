package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"log/slog"
)

// MaxLimit is the largest page SentinelOne serves; a filter's Limit above it
// is sent as MaxLimit (a larger value would be a 400).
const MaxLimit = 1000

// Page is one page of a list. Items keep the console's bytes in their Raw
// field, which may share the memory of the whole answer: treat it as
// read-only, and copy it to keep one item long after the page. NextCursor is "" on the last page, whichever way the console said
// so (null, "" or "null").
type Page[T any] struct {
	Items      []T
	NextCursor string
	TotalItems int
}

func (p *Page[T]) next() string { return p.NextCursor }
func (p *Page[T]) size() int    { return len(p.Items) }

// pager is what the iterator needs of a page.
type pager interface {
	next() string
	size() int
}

// listEnvelope is the envelope of every list answer.
type listEnvelope struct {
	Data       json.RawMessage `json:"data"`
	Pagination struct {
		NextCursor json.RawMessage `json:"nextCursor"`
		TotalItems int             `json:"totalItems"`
	} `json:"pagination"`
}

// decodePage decodes a list answer whose data is an array of T.
//
// Items with a one-pass decoder (fastItem: threats, agents) are read by
// fastPage when the answer has the usual shape; their Raw then shares the
// body's memory. Otherwise the common answer (data an array) decodes with
// encoding/json in one call, items included: a page of 1000 threats is
// 4 MB, and a second pass over a json.RawMessage costs as much again.
// Anything else (data missing, null or not an array) falls back to the
// two-pass path, which says what is wrong.
func decodePage[T any](body []byte) (*Page[T], error) {
	if p, ok := fastPage[T](body); ok {
		return p, nil
	}
	return decodePageJSON[T](body)
}

// decodePageJSON is decodePage with encoding/json only.
func decodePageJSON[T any](body []byte) (*Page[T], error) {
	var fast struct {
		Data       *[]T `json:"data"`
		Pagination struct {
			NextCursor json.RawMessage `json:"nextCursor"`
			TotalItems int             `json:"totalItems"`
		} `json:"pagination"`
	}
	if err := json.Unmarshal(body, &fast); err == nil && fast.Data != nil {
		next, err := normalizeCursor(fast.Pagination.NextCursor)
		if err != nil {
			return nil, err
		}
		return &Page[T]{Items: *fast.Data, NextCursor: next, TotalItems: fast.Pagination.TotalItems}, nil
	} else if err != nil {
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) {
			return nil, err // not JSON, or an item refused itself (e.g. a v2.0 threat)
		}
	}
	var env listEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	return pageFrom[T](env, env.Data)
}

func pageFrom[T any](env listEnvelope, data json.RawMessage) (*Page[T], error) {
	next, err := normalizeCursor(env.Pagination.NextCursor)
	if err != nil {
		return nil, err
	}
	p := &Page[T]{NextCursor: next, TotalItems: env.Pagination.TotalItems}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("list answer has no data member")
	}
	if isNull(data) {
		return p, nil
	}
	if data[0] != '[' {
		return nil, errors.New("list answer's data is not an array")
	}
	if err := json.Unmarshal(data, &p.Items); err != nil {
		return nil, err
	}
	return p, nil
}

// paginate iterates pages: it fetches from cursor (first page when ""), yields
// each page, and follows NextCursor with the caller's filters unchanged, so a
// caller can commit per page. It stops after a page without a next cursor,
// an empty page, or a cursor already followed (a console that loops), and
// after yielding an error. Breaking out of the loop stops fetching.
func paginate[P pager](ctx context.Context, log *slog.Logger, path, cursor string, fetch func(ctx context.Context, cursor string) (P, error)) iter.Seq2[P, error] {
	return func(yield func(P, error) bool) {
		seen := map[string]bool{}
		if cursor != "" {
			seen[cursor] = true
		}
		for {
			p, err := fetch(ctx, cursor)
			if err != nil {
				var zero P
				yield(zero, err)
				return
			}
			if !yield(p, nil) {
				return
			}
			next := p.next()
			if next == "" || p.size() == 0 {
				return
			}
			if seen[next] {
				log.LogAttrs(ctx, slog.LevelWarn, "sentinelone pagination stopped: cursor repeated", slog.String("path", path))
				return
			}
			seen[next] = true
			cursor = next
		}
	}
}
