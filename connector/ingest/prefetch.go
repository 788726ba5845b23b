package ingest

import (
	"context"
	"iter"
)

// prefetch runs the sequence pages(ctx) one step ahead on its own
// goroutine: SentinelOne reads (and decodes) page n+1 while page n is
// published and acknowledged. Pages still come in order, and the cursor walk
// is the same; a page read ahead is simply dropped when the caller stops
// early. One step, not two: the hand-over is unbuffered, so the goroutine
// holds page n+1 until the caller takes it rather than reading n+2 too
// (a page of 1000 threats is 4 MB, and its events as much again).
func prefetch[T any](ctx context.Context, pages func(context.Context) iter.Seq2[T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		type item struct {
			v   T
			err error
		}
		ctx, cancel := context.WithCancel(ctx)
		seq := pages(ctx)
		ch := make(chan item)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer close(ch)
			for v, err := range seq {
				select {
				case ch <- item{v, err}:
				case <-ctx.Done():
					return
				}
			}
		}()
		defer func() { cancel(); <-done }()
		for it := range ch {
			if !yield(it.v, it.err) {
				return
			}
		}
	}
}
