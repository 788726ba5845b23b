package budget

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestAllocate(t *testing.T) {
	const f = 0.25 / 3 // the default floor with three replicas
	read := func(v float64) wants { return wants{prioRead: v} }
	tests := []struct {
		name  string
		want  []wants
		floor float64
		share []float64
	}{
		{"alone and idle takes everything", []wants{{}}, 0.25, []float64{1}},
		{"alone and hungry takes everything", []wants{read(5)}, 0.25, []float64{1}},
		{"all idle split equally", []wants{{}, {}, {}}, f, []float64{1. / 3, 1. / 3, 1. / 3}},
		{"all hungry split equally", []wants{read(2), read(2), read(2)}, f, []float64{1. / 3, 1. / 3, 1. / 3}},
		{"unequally hungry still split equally", []wants{read(2), read(9), read(0.5)}, f, []float64{1. / 3, 1. / 3, 1. / 3}},
		// One idle replica keeps the floor; the hungry split the rest.
		{"one idle", []wants{{}, read(2), read(2)}, f, []float64{f, (1 - f) / 2, (1 - f) / 2}},
		// A light replica gets what it wants, the heavy one the rest.
		{"light and heavy", []wants{read(0.2), read(3)}, 0.125, []float64{0.2, 0.8}},
		// Light wants leave room: each gets its want (at least the floor)
		// plus an equal part of the rest.
		{"all light", []wants{read(0.1), read(0.3)}, 0.125, []float64{0.125 + 0.2875, 0.3 + 0.2875}},
		// Reads on one replica come before background work on another.
		{"reads before background", []wants{{prioBackground: 5}, read(0.6)}, 0.125, []float64{0.4, 0.6}},
		// Mutating calls come before reads; the reads then split what is
		// left.
		{"mutating before reads", []wants{{prioMutating: 0.5, prioRead: 1}, read(5)}, 0.1, []float64{0.5 + 0.2, 0.1 + 0.2}},
		{"mutating want above all", []wants{{prioMutating: 0.7}, read(5), read(5)}, 0.05, []float64{0.7, 0.15, 0.15}},
		// Reads are covered before background, and background then
		// water-filled among those still wanting.
		{"three lanes", []wants{{prioRead: 0.3, prioBackground: 2}, read(0.3), {prioBackground: 2}}, 0.1,
			[]float64{0.3 + 0.15, 0.3, 0.1 + 0.15}},
		{"negative wants count as none", []wants{read(-3), read(-1)}, 0.25, []float64{0.5, 0.5}},
	}
	for _, tt := range tests {
		got := allocate(tt.want, tt.floor)
		sum := 0.0
		for i := range got {
			sum += got[i]
		}
		for i := range got {
			if !near(got[i], tt.share[i]) {
				t.Errorf("%s: shares %v, want %v", tt.name, got, tt.share)
				break
			}
		}
		if !near(sum, 1) {
			t.Errorf("%s: shares add up to %v", tt.name, sum)
		}
	}
	if got := allocate(nil, 0.1); len(got) != 0 {
		t.Errorf("no replicas: %v", got)
	}
}

func TestWaterFill(t *testing.T) {
	tests := []struct {
		need  []float64
		total float64
		give  []float64
	}{
		{[]float64{0.1, 0.2}, 1, []float64{0.1, 0.2}},
		{[]float64{0.1, 0.9, 0.9}, 0.5, []float64{0.1, 0.2, 0.2}},
		{[]float64{1, 1}, 0.5, []float64{0.25, 0.25}},
		{[]float64{0, 1}, 0, []float64{0, 0}},
	}
	for _, tt := range tests {
		got := waterFill(tt.need, tt.total)
		for i := range got {
			if !near(got[i], tt.give[i]) {
				t.Errorf("waterFill(%v, %v) = %v, want %v", tt.need, tt.total, got, tt.give)
				break
			}
		}
	}
}

func TestThrottleFactor(t *testing.T) {
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const recovery = 10 * time.Second
	th := throttle{Seq: 1, Factor: 0.5, At: at}
	tests := []struct {
		name string
		th   throttle
		now  time.Time
		want float64
	}{
		{"none", throttle{}, at, 1},
		{"at the decrease", th, at, 0.5},
		{"recovering linearly", th, at.Add(2 * time.Second), 0.7},
		{"recovered", th, at.Add(5 * time.Second), 1},
		{"stays recovered", th, at.Add(time.Hour), 1},
		{"dated ahead of this clock", th, at.Add(-3 * time.Second), 0.5},
	}
	for _, tt := range tests {
		if got := tt.th.factor(tt.now, recovery); !near(got, tt.want) {
			t.Errorf("%s: factor %v, want %v", tt.name, got, tt.want)
		}
	}
	newer := []struct {
		name     string
		cur, got throttle
		want     bool
	}{
		{"later decrease", th, throttle{Seq: 2, Factor: 0.9}, true},
		{"earlier decrease", throttle{Seq: 3, Factor: 0.9}, th, false},
		{"same decrease, more severe", th, throttle{Seq: 1, Factor: 0.25}, true},
		{"same decrease, milder", th, throttle{Seq: 1, Factor: 0.75}, false},
		{"no throttle", th, throttle{}, false},
		{"first throttle", throttle{}, th, true},
	}
	for _, tt := range newer {
		if got := tt.cur.newer(tt.got); got != tt.want {
			t.Errorf("%s: newer = %v", tt.name, got)
		}
	}
}
