package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s1bridge/s1bridge/internal/testenv"
)

// demo is a running `s1bridge demo` on free ports.
type demo struct {
	out, err *testenv.SyncBuffer
	server   string // its NATS URL
}

// startDemo runs `s1bridge demo` as a user would, its NATS and HTTP ports
// moved to free ones, until the test ends.
func startDemo(t *testing.T) *demo {
	t.Helper()
	natsAddr, httpAddr := freeAddr(t), freeAddr(t)
	t.Setenv("S1BRIDGE_NATS__EMBEDDED__LISTEN", natsAddr)
	t.Setenv("S1BRIDGE_HTTP__LISTEN", httpAddr)
	ctx, cancel := context.WithCancel(context.Background())
	d := &demo{out: &testenv.SyncBuffer{}, err: &testenv.SyncBuffer{}, server: "nats://" + natsAddr}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo"}, d.out, d.err) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v\n%s", err, d.err.String())
		}
	})
	testenv.WaitFor(t, 30*time.Second, "the demo to start", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("demo stopped: %v\n%s", err, d.err.String())
		default:
		}
		return strings.Contains(d.out.String(), "s1bridge demo is running")
	})
	return d
}

// shellWords splits a command line as sh would for the lines the README
// and the demo print: words, 'single-quoted' and "double-quoted" strings
// (with \" and \\ escapes), and a trailing # comment, returned apart.
func shellWords(t *testing.T, line string) (words []string, comment string) {
	t.Helper()
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %s", line)
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\' || line[i+1] == '$') {
					i++
				}
				w.WriteByte(line[i])
			}
			if i >= len(line) {
				t.Fatalf("unterminated \" in %s", line)
			}
			inWord = true
		case c == '#' && !inWord:
			return words, strings.TrimSpace(line[i+1:])
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, ""
}

// commandLine is one s1bridge command line a document shows.
type commandLine struct {
	where, line string
	args        []string // after "s1bridge"
	// wantCode is the error code the document says the example answers
	// (a comment "# 404: ..."), 0 for a success.
	wantCode int
}

var wantErrRE = regexp.MustCompile(`^([1-5][0-9][0-9])\b`)

// placeholder reports whether w stands for something to fill in (ACTION,
// [JSON], [--console NAME]): the line shows a usage, not an example.
func placeholder(w string) bool {
	return strings.HasPrefix(w, "[") && !strings.HasPrefix(w, "[{") || w != "" && strings.Trim(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_|") == ""
}

// commandLines finds the `s1bridge call` and `s1bridge events` lines of a
// document: in code spans (`s1bridge call ...`) and code blocks, spelled
// s1bridge or go run ./cmd/s1bridge. events --follow never ends: skipped.
func commandLines(t *testing.T, name, text string) []commandLine {
	t.Helper()
	var out []commandLine
	add := func(n int, line string) {
		line = strings.TrimSpace(line)
		for _, p := range []string{"go run ./cmd/s1bridge ", "s1bridge "} {
			rest, ok := strings.CutPrefix(line, p)
			if !ok || !(strings.HasPrefix(rest, "call ") || strings.HasPrefix(rest, "events")) {
				continue
			}
			words, comment := shellWords(t, rest)
			if words[0] == "events" && strings.Contains(rest, "--follow") || slices.ContainsFunc(words, placeholder) {
				return
			}
			cl := commandLine{where: fmt.Sprintf("%s:%d", name, n), line: line, args: words}
			if m := wantErrRE.FindStringSubmatch(comment); m != nil {
				fmt.Sscan(m[1], &cl.wantCode)
			}
			out = append(out, cl)
			return
		}
	}
	inBlock := false
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			add(i+1, l)
			continue
		}
		for _, span := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(l, -1) {
			add(i+1, span[1])
		}
	}
	return out
}

// runLine runs one documented line against a demo and checks it answers
// as the document says: exit 0, or exit 1 with the documented code.
func runLine(t *testing.T, d *demo, cl commandLine) string {
	t.Helper()
	args := append([]string{}, cl.args...)
	if !strings.Contains(cl.line, "--server") {
		args = append(args, "--server", d.server)
	}
	out, errOut, code := runCmd(t, args...)
	switch {
	case cl.wantCode == 0 && code != 0:
		t.Errorf("%s: %s\nexit %d:\n%s%s", cl.where, cl.line, code, out, errOut)
	case cl.wantCode != 0 && (code != 1 || !strings.Contains(errOut, fmt.Sprintf("failed: %d ", cl.wantCode))):
		t.Errorf("%s: %s\nwant the documented %d, got exit %d:\n%s%s", cl.where, cl.line, cl.wantCode, code, out, errOut)
	case code == 0 && cl.args[0] == "call":
		// An example that acts on nothing names ids the console does not
		// have.
		var r struct{ Affected *int }
		if json.NewDecoder(strings.NewReader(out)).Decode(&r) == nil && r.Affected != nil && *r.Affected == 0 {
			t.Errorf("%s: %s\nacted on nothing (affected 0): do its ids exist in the demo?\n%s", cl.where, cl.line, out)
		}
	}
	return out
}

// TestREADMEExamples runs every `s1bridge call` (and `s1bridge events`)
// line of the README, in order, against the demo (the demo's configuration,
// its emulator with the example objects, live mode on): each answers
// without error, or with the error the README says it does.
func TestREADMEExamples(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := commandLines(t, "README.md", string(b))
	calls := map[string]bool{}
	for _, cl := range lines {
		if cl.args[0] == "call" && len(cl.args) > 1 {
			calls[cl.args[1]] = true
		}
	}
	if len(lines) < 40 || !calls["monitors.cancel"] || !calls["threats.fetch_file"] {
		t.Fatalf("found %d lines, calling %d actions: is the README parsed?", len(lines), len(calls))
	}
	d := startDemo(t)
	for _, cl := range lines {
		runLine(t, d, cl)
	}
	t.Logf("%d README lines ran against the demo (%d actions)", len(lines), len(calls))
}

// TestDemoHints: the demo, its NATS and HTTP ports moved, prints hints
// that carry --server for the new NATS address and the real HTTP address,
// and every s1bridge line it prints works.
func TestDemoHints(t *testing.T) {
	d := startDemo(t)
	text := d.out.String()
	lines := commandLines(t, "demo output", "```\n"+text+"\n```")
	if len(lines) < 5 {
		t.Fatalf("%d s1bridge lines in the demo's hints:\n%s", len(lines), text)
	}
	for _, cl := range lines {
		if !strings.HasSuffix(cl.line, "--server "+d.server) {
			t.Errorf("hint without --server %s: %s", d.server, cl.line)
		}
		runLine(t, d, cl)
	}
	if !strings.Contains(text, "http://"+os.Getenv("S1BRIDGE_HTTP__LISTEN")+"/healthz") || !strings.Contains(text, "nats -s "+d.server+" micro ls") {
		t.Errorf("hints name other addresses:\n%s", text)
	}
}

// TestDemoPortTaken: a taken NATS or HTTP port stops the demo with a
// ready-to-paste variable naming a free port.
func TestDemoPortTaken(t *testing.T) {
	for _, key := range []string{"S1BRIDGE_NATS__EMBEDDED__LISTEN", "S1BRIDGE_HTTP__LISTEN"} {
		t.Run(key, func(t *testing.T) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			t.Setenv("S1BRIDGE_NATS__EMBEDDED__LISTEN", freeAddr(t))
			t.Setenv("S1BRIDGE_HTTP__LISTEN", freeAddr(t))
			t.Setenv(key, taken.Addr().String())
			_, errOut, code := runCmd(t, "demo")
			m := regexp.MustCompile(key + `=(127\.0\.0\.1:[0-9]+) `).FindStringSubmatch(errOut)
			if code == 0 || m == nil || !strings.Contains(errOut, taken.Addr().String()+" is taken") {
				t.Fatalf("exit %d, stderr:\n%s", code, errOut)
			}
			l, err := net.Listen("tcp", m[1])
			if err != nil {
				t.Fatalf("the suggested %s is not free: %v", m[1], err)
			}
			l.Close()
		})
	}
}
