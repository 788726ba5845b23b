package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream API subjects LastEvents uses (the server's names; nats.go
// keeps its own copies unexported). A direct get is answered by any replica
// of the stream; a message get only by its leader.
const (
	apiDirectGet = "$JS.API.DIRECT.GET."
	apiMsgGet    = "$JS.API.STREAM.MSG.GET."
)

// Headers of a direct get's answers.
const (
	hdrStatus         = "Status"
	hdrSubject        = "Nats-Subject"
	hdrSequence       = "Nats-Sequence"
	hdrTimeStamp      = "Nats-Time-Stamp"
	hdrNumPending     = "Nats-Num-Pending"
	hdrUpToSequence   = "Nats-UpTo-Sequence"
	statusEOB         = "204"
	statusNotFound    = "404"
	statusTooMany     = "413"
	maxMultiLast      = 256 // filters per request; the server answers at most 1024 messages
	leaderCatchUpWait = 50 * time.Millisecond
	leaderCatchUpTry  = 5
)

// errTooMany is a request whose answer the server cut (413, or a byte limit).
var errTooMany = errors.New("store: too many messages for one direct get")

// LastEvents returns the last message of every subject that matches one of
// filters (wildcards allowed) in the events stream, as of at least the
// moment LastEvents began, in no particular order; it may return other
// messages too, which the caller ignores. It is what a leader reads to
// recover states after a failed commit.
//
// It asks in batches (a direct get with multi_last, up to maxMultiLast
// filters a request, a batch the server cuts split in two), not one request
// a subject. A direct get is answered by any replica, and a replica may lag
// behind what the stream has acknowledged: so LastEvents first reads the
// stream's last message from its leader (a message get), adds that
// message's subject to every batch, and takes an answer only from a replica
// that has it (the end of batch's Nats-UpTo-Sequence at least its
// sequence). A lagging replica's answer is asked again; should the replicas
// still lag, the leader is asked filter by filter.
func (s *Store) LastEvents(ctx context.Context, filters []string) ([]*jetstream.RawStreamMsg, error) {
	if len(filters) == 0 {
		return nil, nil
	}
	stream := s.events.CachedInfo().Config.Name
	last, err := s.leaderGet(ctx, stream, ">")
	if err != nil {
		return nil, fmt.Errorf("read the events stream's last message: %w", err)
	}
	if last == nil {
		return nil, nil // the stream is empty
	}
	seen := map[uint64]bool{}
	var out []*jetstream.RawStreamMsg
	for len(filters) > 0 {
		n := min(len(filters), maxMultiLast)
		msgs, err := s.lastMsgs(ctx, stream, filters[:n], last)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if !seen[m.Sequence] {
				seen[m.Sequence] = true
				out = append(out, m)
			}
		}
		filters = filters[n:]
	}
	return out, nil
}

// lastMsgs is LastEvents for at most maxMultiLast filters, with last the
// stream's last message as its leader had it.
func (s *Store) lastMsgs(ctx context.Context, stream string, filters []string, last *jetstream.RawStreamMsg) ([]*jetstream.RawStreamMsg, error) {
	for try := 0; try < leaderCatchUpTry; try++ {
		msgs, upTo, err := s.directMulti(ctx, stream, append(filters[:len(filters):len(filters)], last.Subject))
		switch {
		case errors.Is(err, errTooMany) && len(filters) > 1:
			a, err := s.lastMsgs(ctx, stream, filters[:len(filters)/2], last)
			if err != nil {
				return nil, err
			}
			b, err := s.lastMsgs(ctx, stream, filters[len(filters)/2:], last)
			return append(a, b...), err
		case errors.Is(err, errNoResults):
			// Not even the last message: a replica far behind.
		case err != nil:
			return nil, err
		case upTo >= last.Sequence:
			return msgs, nil
		}
		// The replica that answered lags behind the leader: ask again
		// (the next answer may come from another replica, or this one
		// caught up).
		t := time.NewTimer(leaderCatchUpWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return s.leaderLast(ctx, stream, filters)
}

// directMulti makes one direct get of the last message of every subject
// matching filters, and returns the messages and the last sequence of the
// replica that answered.
func (s *Store) directMulti(ctx context.Context, stream string, filters []string) ([]*jetstream.RawStreamMsg, uint64, error) {
	nc := s.nc
	req, err := json.Marshal(struct {
		MultiLast []string `json:"multi_last"`
	}{filters})
	if err != nil {
		return nil, 0, err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(apiDirectGet+stream, inbox, req); err != nil {
		return nil, 0, err
	}
	var out []*jetstream.RawStreamMsg
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("direct get of %d subjects: %w", len(filters), err)
		}
		switch status := m.Header.Get(hdrStatus); status {
		case "":
			rm, err := directMsg(m)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, rm)
		case statusEOB:
			if np := m.Header.Get(hdrNumPending); np != "" && np != "0" {
				return nil, 0, errTooMany // cut at the server's byte limit
			}
			upTo, err := strconv.ParseUint(m.Header.Get(hdrUpToSequence), 10, 64)
			if err != nil {
				return nil, 0, fmt.Errorf("direct get: end of batch without %s: %w", hdrUpToSequence, err)
			}
			return out, upTo, nil
		case statusNotFound:
			if len(out) == 0 {
				return nil, 0, errNoResults
			}
			return nil, 0, fmt.Errorf("direct get: 404 after %d messages", len(out))
		case statusTooMany:
			return nil, 0, errTooMany
		default:
			return nil, 0, fmt.Errorf("direct get of %d subjects: status %s %s", len(filters), status, m.Header.Get("Description"))
		}
	}
}

// errNoResults is a direct get that found no message at all.
var errNoResults = errors.New("store: no message on any subject")

// directMsg reads one message of a direct get's answer.
func directMsg(m *nats.Msg) (*jetstream.RawStreamMsg, error) {
	seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("direct get: message without %s: %w", hdrSequence, err)
	}
	t, _ := time.Parse(time.RFC3339Nano, m.Header.Get(hdrTimeStamp))
	return &jetstream.RawStreamMsg{Subject: m.Header.Get(hdrSubject), Sequence: seq, Header: m.Header, Data: m.Data, Time: t}, nil
}

// LastEvent returns the last message on filter (wildcards allowed) in the
// events stream as its leader has it, or nil when there is none: unlike
// jetstream.Stream.GetLastMsgForSubject, which the stream's AllowDirect
// lets any replica answer, it does not miss what a lagging replica has not
// received yet.
func (s *Store) LastEvent(ctx context.Context, filter string) (*jetstream.RawStreamMsg, error) {
	return s.leaderGet(ctx, s.events.CachedInfo().Config.Name, filter)
}

// leaderLast reads the last message of each filter from the stream's
// leader, one request a filter, all sent at once: the fallback when the
// replicas answering direct gets lag.
func (s *Store) leaderLast(ctx context.Context, stream string, filters []string) ([]*jetstream.RawStreamMsg, error) {
	type result struct {
		m   *jetstream.RawStreamMsg
		err error
	}
	results := make(chan result, len(filters))
	for _, f := range filters {
		go func() {
			m, err := s.leaderGet(ctx, stream, f)
			results <- result{m, err}
		}()
	}
	var (
		out   []*jetstream.RawStreamMsg
		first error
	)
	for range filters {
		r := <-results
		switch {
		case r.err != nil && first == nil:
			first = r.err
		case r.m != nil:
			out = append(out, r.m)
		}
	}
	return out, first
}

// leaderGet is the leader's answer to a message get of the last message on
// filter, or nil when there is none. It returns one message even when
// several subjects match filter (the last of them all), which is what
// recovery needs: the last event of an object.
func (s *Store) leaderGet(ctx context.Context, stream, filter string) (*jetstream.RawStreamMsg, error) {
	req, err := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{filter})
	if err != nil {
		return nil, err
	}
	m, err := s.nc.RequestWithContext(ctx, apiMsgGet+stream, req)
	if err != nil {
		return nil, fmt.Errorf("message get of %s: %w", filter, err)
	}
	var resp struct {
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return nil, fmt.Errorf("message get of %s: %w", filter, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, nil
		}
		return nil, fmt.Errorf("message get of %s: %w", filter, resp.Error)
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("message get of %s: empty answer", filter)
	}
	rm := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Seq, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if rm.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("message get of %s: %w", filter, err)
		}
	}
	return rm, nil
}
