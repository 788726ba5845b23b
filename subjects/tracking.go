package subjects

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// Names of action tracking (DESIGN.md §13). The keys:
//
//	<console>.t.<trackingId>   a tracked action awaiting confirmation   TRACKING
//	<console>.poll             tracking poller progress                 TRACKING
//	<console>.tracking         tracking poller lease                    LEASES

// BucketTracking holds the tracked actions: P_TRACKING.
const BucketTracking Bucket = "TRACKING"

const (
	keyTracked      = "t"        // <console>.t.<trackingId>
	keyTrackingPoll = "poll"     // <console>.poll in the tracking bucket
	keyTracking     = "tracking" // <console>.tracking: the tracking poller's lease
)

// TrackingKey is the key of the record of tracked action id on console.
func TrackingKey(console, id string) string { return console + "." + keyTracked + "." + id }

// TrackingKeys matches every TrackingKey of console (a KV filter).
func TrackingKeys(console string) string { return TrackingKey(console, "*") }

// TrackingPollKey is the key of the tracking poller's progress on console.
func TrackingPollKey(console string) string { return console + "." + keyTrackingPoll }

// TrackingLeaseKey is the lease of the tracking poller of console.
func TrackingLeaseKey(console string) string { return console + "." + keyTracking }

// TrackingID is the tracking id of the tracked action a request started:
// a hash of the console and the request's CloudEvents source and id, so a
// repeat of the request (same source and id) gets the same tracking id
// whether or not the idempotency layer replays it. It is 24 lower-case
// base32 characters (120 bits), one subject token, like a monitor id. The
// caller must not pass an empty id: a request without one (a handler run
// directly) needs an id of its own, random, to be tracked apart.
func TrackingID(console, source, id string) string {
	h := sha256.Sum256([]byte("tracking\x00" + console + "\x00" + source + "\x00" + id))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:15]))
}
