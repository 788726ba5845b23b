package connector

import "time"

// observer receives what the metrics count. The Prometheus implementation
// lives in metrics.go; nopObserver counts nothing.
type observer interface {
	actionDone(console, action string, code int, took time.Duration)
	ingestObserver
}

type nopObserver struct{}

func (nopObserver) actionDone(string, string, int, time.Duration) {}
func (nopObserver) eventsPublished(string, int, int)              {}
func (nopObserver) pollDone(string, cursorRecord, error)          {}
