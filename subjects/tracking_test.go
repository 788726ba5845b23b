package subjects

import (
	"regexp"
	"testing"
)

func TestTrackingNames(t *testing.T) {
	s1, _ := New("s1")
	for _, tc := range []struct{ got, want string }{
		{s1.BucketName(BucketTracking), "S1_TRACKING"},
		{TrackingKey("main", "abc"), "main.t.abc"},
		{TrackingKeys("main"), "main.t.*"},
		{TrackingPollKey("main"), "main.poll"},
		{TrackingLeaseKey("main"), "main.tracking"},
		{s1.ActionOutcomeWildcard("main", "abc"), "s1.main.event.action.abc.*"},
		{ActionOutcomeID("main", "abc", OutcomeCompleted), "main/action/abc/completed"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	// The lease and the poll cursor never fall under the records' filter.
	if re := regexp.MustCompile(`^main\.t\.[^.]+$`); re.MatchString(TrackingPollKey("main")) || re.MatchString(TrackingLeaseKey("main")) {
		t.Error("a tracking key of another kind matches TrackingKeys")
	}
}

func TestTrackingID(t *testing.T) {
	id := TrackingID("main", "/soar/router-1", "req-1")
	if !regexp.MustCompile(`^[a-z2-7]{24}$`).MatchString(id) || !ValidToken(id) {
		t.Fatalf("tracking id %q is not 24 lower-case base32 characters", id)
	}
	if again := TrackingID("main", "/soar/router-1", "req-1"); again != id {
		t.Errorf("the same request gave %q, then %q", id, again)
	}
	// Any part that differs makes another id, and the parts cannot slide
	// into each other.
	for _, other := range []string{
		TrackingID("eu", "/soar/router-1", "req-1"),
		TrackingID("main", "/soar/router-2", "req-1"),
		TrackingID("main", "/soar/router-1", "req-2"),
		TrackingID("main", "/soar/router-1req-1", ""),
		TrackingID("main/soar/router-1", "", "req-1"),
	} {
		if other == id {
			t.Errorf("another request has tracking id %q too", id)
		}
	}
}
