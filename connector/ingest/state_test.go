package ingest

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// release1State is how release 1 stored a threat's state (connector
// threatState): a rolling upgrade reads what it wrote, and a replica of
// release 1 still running reads what this one writes.
type release1State struct {
	Status     string    `json:"s"`
	Verdict    string    `json:"v"`
	Mitigation string    `json:"m"`
	UpdatedAt  time.Time `json:"u"`
}

func TestStateCompatibleWithRelease1(t *testing.T) {
	for _, old := range []release1State{
		{"resolved", "true_positive", "mitigated", time.Date(2024, 5, 1, 8, 12, 10, 2311000, time.UTC)},
		{"unresolved", "undefined", "not_mitigated", time.Date(2024, 5, 1, 8, 12, 10, 0, time.UTC)},
		{"", "", "", time.Time{}},
		{`in "quotes"`, "ünïcode", "a\\b\n", time.Date(2024, 5, 1, 8, 12, 10, 1, time.FixedZone("", 3600))},
	} {
		written, _ := json.Marshal(old)
		s, err := decodeState(threatFields, written, map[string]string{})
		if err != nil {
			t.Fatalf("%s: %v", written, err)
		}
		if s.vals != [MaxFields]string{old.Status, old.Verdict, old.Mitigation} || !s.updatedAt.Equal(old.UpdatedAt) {
			t.Errorf("%s read as %+v", written, s)
		}
		ours := encodeState(threatFields, &s)
		var back release1State
		if err := json.Unmarshal(ours, &back); err != nil || back.Status != old.Status || back.Verdict != old.Verdict ||
			back.Mitigation != old.Mitigation || !back.UpdatedAt.Equal(old.UpdatedAt) {
			t.Errorf("release 1 reads %s as %+v (%v), want %+v", ours, back, err, old)
		}
		if old.Status == "resolved" && string(ours) != string(written) {
			t.Errorf("state %s, release 1 wrote %s", ours, written)
		}
	}
}

// TestValueTable: a kept state gives back the state it keeps, and a value
// shared by many objects is held once.
func TestValueTable(t *testing.T) {
	var tab valueTable
	at := time.Date(2024, 5, 1, 8, 0, 0, 123, time.UTC)
	for i := range 1000 {
		s := state{vals: [MaxFields]string{"resolved", "true_positive", strconv.Itoa(i % 3), ""}, updatedAt: at, rev: uint64(i)}
		if got := tab.state(tab.keep(&s)); got != s {
			t.Fatalf("kept %+v, got back %+v", s, got)
		}
	}
	if len(tab.vals) != 6 {
		t.Errorf("%d values held for 6 distinct ones: %q", len(tab.vals), tab.vals)
	}
}

// TestStateMap: numeric ids and others are kept apart without mixing up
// ids whose digits would read as the same number.
func TestStateMap(t *testing.T) {
	m := newStateMap()
	ids := []string{"1938475610293847561", "18446744073709551615", "18446744073709551616", "0123", "123", "0", "a-uuid-1", "", "99999999999999999999"}
	for i, id := range ids {
		m.set(id, known{rev: uint64(i + 1)})
	}
	for i, id := range ids {
		if k, ok := m.get(id); !ok || k.rev != uint64(i+1) {
			t.Errorf("%q: %+v, %t", id, k, ok)
		}
	}
	if _, ok := m.get("124"); ok {
		t.Error("an id never set was found")
	}
	if m.len() != len(ids) {
		t.Errorf("len %d, want %d", m.len(), len(ids))
	}
	if n, ok := numericID("1938475610293847561"); !ok || n != 1938475610293847561 {
		t.Errorf("numericID = %d, %t", n, ok)
	}
}
