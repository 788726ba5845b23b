package handlers

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEActionTable keeps the README's table of actions (section
// Actions) equal to All: the same actions in the same order, each with its
// seed name and the right mutating column, and an `s1bridge call` example
// of that action.
func TestREADMEActionTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Actions\n")
	if !ok {
		t.Fatal("README.md has no section ## Actions")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("^\\| `([a-z._]+)` \\| ([^|]+) \\| (yes|no)\\b[^|]* \\| (.*) \\|$")
	var names []string
	all := All()
	for _, line := range strings.Split(section, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, title, mutating, example := m[1], strings.TrimSpace(m[2]), m[3] == "yes", m[4]
		names = append(names, name)
		a, ok := Lookup(name)
		if !ok {
			t.Errorf("README lists %s, which is not an action", name)
			continue
		}
		if a.Mutating != mutating {
			t.Errorf("README says %s is mutating %t; it is %t", name, mutating, a.Mutating)
		}
		if title != a.Title && !strings.HasPrefix(title, "(") {
			t.Errorf("README names %s %q; its seed name is %q", name, title, a.Title)
		}
		if !strings.HasPrefix(example, "`s1bridge call "+name) {
			t.Errorf("README's example of %s is %s, not an s1bridge call of it", name, example)
		}
	}
	want := make([]string, len(all))
	for i, a := range all {
		want[i] = a.Name
	}
	if !slices.Equal(names, want) {
		t.Errorf("README's actions, in order:\n%v\nthe table's (All):\n%v", names, want)
	}
}
