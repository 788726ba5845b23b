package subjects

import "testing"

func TestBudgetKeys(t *testing.T) {
	if got := BudgetKey("main", "host-1a2b"); got != "main.budget.host-1a2b" {
		t.Errorf("BudgetKey = %q", got)
	}
	if got := BudgetKeys("main"); got != "main.budget.*" {
		t.Errorf("BudgetKeys = %q", got)
	}
	tests := []struct {
		key, replica string
		ok           bool
	}{
		{"main.budget.host-1a2b", "host-1a2b", true},
		{"main.budget.", "", false},
		{"main.budget.a.b", "", false},
		{"other.budget.host", "", false},
		{"main.ingest", "", false},
		{"mainx.budget.host", "", false},
	}
	for _, tt := range tests {
		r, ok := BudgetReplica("main", tt.key)
		if r != tt.replica || ok != tt.ok {
			t.Errorf("BudgetReplica(main, %q) = %q, %v; want %q, %v", tt.key, r, ok, tt.replica, tt.ok)
		}
	}
}
