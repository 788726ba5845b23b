package emulator

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"testing"
	"time"
)

type testRow struct{ row }

func newTestRow(id uint64, created, updated int64) *testRow {
	return &testRow{row{id: id, idStr: formatID(id), created: created, updated: updated}}
}

func checkIndexes(t *testing.T, tb *table[*testRow]) {
	t.Helper()
	for _, n := range []native{nativeID, nativeCreated, nativeUpdated} {
		idx := tb.index(n)
		if len(idx) != len(tb.byID) {
			t.Fatalf("index %d has %d rows, table %d", n, len(idx), len(tb.byID))
		}
		if !slices.IsSortedFunc(idx, func(a, b *testRow) int { return compareKeys(nativeKey(n, a), nativeKey(n, b)) }) {
			t.Fatalf("index %d is not sorted", n)
		}
	}
}

// TestTableAgainstModel runs random inserts, touches and removes and checks
// every query answer against a sort of the whole model.
func TestTableAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tb := newTable[*testRow]()
	model := map[uint64]*testRow{}
	nextID := uint64(minID)
	for step := range 300 {
		switch op := r.IntN(10); {
		case op < 4: // insert a batch, few or many, sharing timestamps
			var add []*testRow
			for range 1 + r.IntN(40) {
				nextID += 1 + uint64(r.IntN(5))
				ts := int64(r.IntN(20)) * 1000
				add = append(add, newTestRow(nextID, ts, ts+int64(r.IntN(3))*1000))
			}
			tb.insert(add...)
			for _, x := range add {
				model[x.id] = x
			}
		case op < 8 && len(model) > 0: // touch a few or many
			var rows []*testRow
			for _, x := range model {
				if r.IntN(3) == 0 {
					rows = append(rows, x)
				}
			}
			tb.touch(rows, int64(r.IntN(25))*1000)
		case len(model) > 0: // remove some
			var rows []*testRow
			for _, x := range model {
				if r.IntN(8) == 0 {
					rows = append(rows, x)
					delete(model, x.id)
				}
			}
			tb.remove(rows...)
		}
		checkIndexes(t, tb)
		if step%10 != 0 {
			continue
		}
		for _, f := range []sortField[*testRow]{{native: nativeID}, {native: nativeCreated}, {native: nativeUpdated}, {num: func(x *testRow) int64 { return x.updated % 7000 }}} {
			for _, desc := range []bool{false, true} {
				lo, hi := int64(r.IntN(10))*1000, int64(10+r.IntN(15))*1000
				var want []uint64
				for _, x := range sortRows(f, slices.Collect(mapValues(model))) {
					if x.updated >= lo && x.updated <= hi {
						want = append(want, x.id)
					}
				}
				if desc {
					slices.Reverse(want)
				}
				q := &listQuery[*testRow]{limit: 1 + r.IntN(7), sort: f, desc: desc}
				q.updated.narrow(lo, hi)
				var got []uint64
				for {
					p := tb.query(q)
					if p.total != len(want) {
						t.Fatalf("step %d: total %d, want %d", step, p.total, len(want))
					}
					for _, x := range p.items {
						got = append(got, x.id)
					}
					if p.last == nil {
						break
					}
					q.after = p.last
				}
				if !slices.Equal(got, want) {
					t.Fatalf("step %d sort %v desc %v: pages %v, want %v", step, f.native, desc, got, want)
				}
			}
		}
	}
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func TestContainsFold(t *testing.T) {
	cases := []struct {
		s, needle string
		want      bool
	}{
		{"FIN-LT-042", "lt-04", true},
		{"FIN-LT-042", "fin", true},
		{"FIN-LT-042", "042x", false},
		{"", "", true},
		{"abc", "", true},
		{"", "a", false},
		{"Größe", "größe", true},
		{"ÄBC", "äb", true},
		{"short", "longer needle", false},
	}
	for _, c := range cases {
		if got := containsFold(c.s, c.needle); got != c.want {
			t.Errorf("containsFold(%q, %q) = %v", c.s, c.needle, got)
		}
	}
}

func TestParseValues(t *testing.T) {
	times := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2024-05-01T08:12:09.481223Z", time.Date(2024, 5, 1, 8, 12, 9, 481223000, time.UTC), true},
		{"2024-05-01T08:12:09Z", time.Date(2024, 5, 1, 8, 12, 9, 0, time.UTC), true},
		{"2024-05-01T10:12:09.5+02:00", time.Date(2024, 5, 1, 8, 12, 9, 500000000, time.UTC), true},
		{"2024-05-01T08:12:09.123", time.Date(2024, 5, 1, 8, 12, 9, 123000000, time.UTC), true},
		{"2024-05-01", time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), true},
		{"2024-05-01T08:12:09 00:00", time.Time{}, false}, // a '+' lost to query decoding
		{"1714551129", time.Time{}, false},
	}
	for _, c := range times {
		ns, ok := parseTime(c.in)
		if ok != c.ok || (ok && ns != c.want.UnixNano()) {
			t.Errorf("parseTime(%q) = %v %v", c.in, time.Unix(0, ns).UTC(), ok)
		}
	}
	bools := map[string]int{"true": 1, "True": 1, "TRUE": 1, "false": 0, "False": 0, "1": -1, "yes": -1, "": -1}
	for in, want := range bools {
		b, ok := parseBool(in)
		if got := map[bool]int{true: 1, false: 0}[b]; !ok && want != -1 || ok && got != want {
			t.Errorf("parseBool(%q) = %v %v", in, b, ok)
		}
	}
	if got := splitList([]string{"a, b", "", "c,,d", " e "}); !slices.Equal(got, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("splitList: %v", got)
	}
	for _, c := range []struct {
		op     string
		lo, hi int64
	}{{"__gt", 11, 1<<63 - 1}, {"__gte", 10, 1<<63 - 1}, {"__lt", -1 << 63, 9}, {"__lte", -1 << 63, 10}, {"", 10, 10}} {
		if lo, hi := rangeOf(c.op, 10, 1); lo != c.lo || hi != c.hi {
			t.Errorf("rangeOf(%q) = %d..%d", c.op, lo, hi)
		}
	}
}

func TestBodyFilterShapes(t *testing.T) {
	vals, err := bodyFilter([]byte(`{"ids":["1","2"],"siteIds":"3,4","tenant":true,"limit":5,"x":null,"o":{"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{"ids": {"1", "2"}, "siteIds": {"3,4"}, "tenant": {"true"}, "limit": {"5"}}
	for k, v := range want {
		if !slices.Equal(vals[k], v) {
			t.Errorf("%s = %v, want %v", k, vals[k], v)
		}
	}
	if len(vals) != len(want) {
		t.Errorf("extra keys: %v", vals)
	}
	if _, err := bodyFilter([]byte(`[1,2]`)); err == nil {
		t.Error("an array filter was accepted")
	}
}
