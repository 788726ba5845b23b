package sentinelone

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/s1bridge/s1bridge/emulator"
)

// The one-pass page decoder (fastjson.go) must read a page exactly as
// encoding/json does, and must actually be the path console answers take.
//
//	go test -run '^$' -fuzz '^FuzzJSONChecker$' ./sentinelone
//	go test -run '^$' -fuzz '^FuzzFastItems$' ./sentinelone

// consolePages are answers shaped as consoles send them: the threat and
// agent fixtures (real captures) and pages built from their items.
func consolePages(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range []string{"xsoar_threats_get_v2.1.json", "xsoar_agents_get_data_array.json", "r7_agents_get_single.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
		if err != nil {
			t.Fatal(err)
		}
		if b = bytes.TrimSpace(b); b[0] == '[' {
			// The bare data array of an agents answer.
			b = append(append([]byte(`{"data":`), b...), `,"pagination":{"nextCursor":"YWJj","totalItems":41}}`...)
		}
		out[name] = b
	}
	return out
}

// TestFastPageTakesConsolePages: the fixtures' threat and agent pages are
// read by the one-pass decoder (were it to refuse them, nothing would be
// faster), and it reads them as encoding/json does, Raw included.
func TestFastPageTakesConsolePages(t *testing.T) {
	for name, body := range consolePages(t) {
		if strings.Contains(name, "threats") {
			comparePages[Threat](t, name, body)
			comparePages[ThreatHead](t, name+" as heads", body)
		} else {
			comparePages[Agent](t, name, body)
		}
		comparePages[Object](t, name+" as objects", body)
	}
	// The envelope's variants: pagination null, missing, a null cursor, no
	// total; whitespace everywhere.
	item, _ := os.ReadFile(filepath.Join("testdata", "fixtures", "xsoar_threats_get_v2.1.json"))
	items := dataItems(item)
	for _, body := range []string{
		`{"data":[` + string(items[0]) + `],"pagination":null}`,
		`{"data":[` + string(items[0]) + `]}`,
		` { "pagination" : { "nextCursor" : null } , "data" : [ ` + string(items[0]) + ` ] , "errors": [] } `,
		`{"data":[],"pagination":{"nextCursor":"null","totalItems":0}}`,
		`{"data":[` + string(items[0]) + `,` + string(items[0]) + `],"pagination":{"nextCursor":" YWJj ","totalItems":2,"extra":[1,{"a":"}"}]}}`,
	} {
		comparePages[Threat](t, body[:min(40, len(body))], []byte(body))
	}
}

func comparePages[T any](t *testing.T, name string, body []byte) {
	t.Helper()
	fast, ok := fastPage[T](body)
	if !ok {
		t.Errorf("%s: the one-pass decoder refused a console page", name)
		return
	}
	want, err := decodePageJSON[T](body)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !reflect.DeepEqual(fast, want) {
		t.Errorf("%s: one pass %+v\nencoding/json %+v", name, fast, want)
	}
}

// TestFastPageDeclines: shapes the one-pass decoder leaves to encoding/json
// (which refuses them or reads them its own way).
func TestFastPageDeclines(t *testing.T) {
	for _, body := range []string{
		`{"data":null}`,
		`{"data":{"id":"1"}}`,
		`{"Data":[]}`,
		`{"data":[],"data":[]}`,
		`{"d\u0061ta":[]}`,
		`{"data":[{"id":"1","ID":"2","threatInfo":{}}]}`,
		`{"data":[{"id":"1","threatInfo":{"threatName":"a"},"threatInfo":{}}]}`,
		`{"data":[{"id":"1","threatInfo":null}]}`,
		`{"data":[{"id":true,"threatInfo":{}}]}`,
		`{"data":[{"threatInfo":{"createdAt":12}}]}`,
		`{"data":[{"threatInfo":{"createdAt":"yesterday"}}]}`,
		`{"data":[],"pagination":{"totalItems":1.5}}`,
		`{"data":[],"pagination":{"totalItems":"7"}}`,
		`{"data":[],"pagination":{"nextCursor":12}}`,
		`{"data":[],"pagination":[]}`,
		`{"data":[]} x`,
		`{"data":[1,]}`,
		`[]`,
	} {
		if p, ok := fastPage[Threat]([]byte(body)); ok {
			t.Errorf("%s: read as %+v, want it left to encoding/json", body, p)
		}
	}
	if _, ok := fastPage[Site]([]byte(`{"data":[]}`)); ok {
		t.Error("a type without a one-pass decoder was read by fastPage")
	}
}

// TestObjectPages: Objects are taken whatever their members (an escaped or
// non-ASCII name included), each as sent; a page holding anything but
// objects is refused, by both decoders.
func TestObjectPages(t *testing.T) {
	body := []byte(`{"data":[{"id":"1","\u0041":[1,{"x":null}],"é":true},{}],"pagination":{"nextCursor":"YWJj","totalItems":2}}`)
	p, ok := fastPage[Object](body)
	if !ok {
		t.Fatal("the one-pass decoder refused a page of objects")
	}
	want := []string{`{"id":"1","\u0041":[1,{"x":null}],"é":true}`, `{}`}
	if len(p.Items) != len(want) || p.NextCursor != "YWJj" || p.TotalItems != 2 {
		t.Fatalf("read %+v", p)
	}
	for i, w := range want {
		if string(p.Items[i].Raw) != w {
			t.Errorf("item %d: %s, want %s", i, p.Items[i].Raw, w)
		}
	}
	comparePages[Object](t, "objects", body)
	for _, bad := range []string{`{"data":[1]}`, `{"data":[null]}`, `{"data":[{}, "a"]}`, `{"data":[[]]}`} {
		if _, ok := fastPage[Object]([]byte(bad)); ok {
			t.Errorf("%s: taken by the one-pass decoder", bad)
		}
		if p, err := decodePage[Object]([]byte(bad)); err == nil {
			t.Errorf("%s: decoded as %+v, want an error", bad, p)
		}
	}
}

// FuzzJSONChecker: the one-pass decoder's validation accepts exactly what
// json.Valid accepts.
func FuzzJSONChecker(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `""`, `"\u00e9\n"`, `"\u00"`, `-0.5e+3`, `01`, `1.`, `.5`, `-`, `1e`, `tru`, `nulls`,
		`{"a":[1,2,{"b":null}]}`, `{"a" 1}`, `{"a":1,}`, `[1,]`, " \t\n[ ] ", "\"\x01\"", "\"\xff\"", `[[[[[]]]]]`, `{"a":"\\"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := jsonChecker{b: b}
		i := v.ws(0)
		end, ok := v.value(i, 0)
		got := ok && v.ws(end) == len(b)
		if got != json.Valid(b) {
			t.Fatalf("checker says %t, json.Valid %t: %q", got, !got, b)
		}
	})
}

// FuzzFastItems holds the one-pass item decoders against UnmarshalJSON:
// whatever valid JSON decodeFast takes, UnmarshalJSON takes too and reads
// the same, Raw included.
func FuzzFastItems(f *testing.F) {
	for name, body := range fixtureSeeds(f) {
		if strings.Contains(name, "threat") || strings.Contains(name, "agent") {
			for _, it := range dataItems(body) {
				f.Add([]byte(it))
			}
		}
	}
	f.Add([]byte(`{"id":1234,"threatInfo":{"threatId":"2","incidentStatus":"In progress","createdAt":"2024-05-01T08:00:00","detectionEngines":["x"]},"agentRealtimeInfo":null}`))
	f.Add([]byte(`{"id":"1","isActive":"True","networkInterfaces":[{"id":5,"inet":["10.0.0.1",null],"inet6":[]},{"name":null}],"updatedAt":null,"computerName":"h\u00e9"}`))
	f.Add([]byte(`{"networkInterfaces":[null],"externalIp":null}`))
	f.Add([]byte(`{"threatInfo":{"detectionEngines":[null,"a",{"key":null,"Title":"t"},{"key":"k","key":"j"},5]}}`))
	f.Add([]byte(`{"ID":"1","threatInfo":{"detectionEngines":[{"key":"k","title":"t"},"s\u00e9"]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSpace(b)
		if !json.Valid(b) || len(b) == 0 {
			return
		}
		var a, wantA Agent
		if decodeFast(&a, b) {
			if err := wantA.UnmarshalJSON(b); err != nil {
				t.Fatalf("agent: one pass reads %+v, UnmarshalJSON refuses: %v\n%s", a, err, b)
			}
			if !reflect.DeepEqual(a, wantA) {
				t.Fatalf("agent: one pass %+v\nUnmarshalJSON %+v\n%s", a, wantA, b)
			}
		}
		var o, wantO Object
		if decodeFast(&o, b) {
			if err := wantO.UnmarshalJSON(b); err != nil {
				t.Fatalf("object: one pass reads %s, UnmarshalJSON refuses: %v", b, err)
			}
			if !bytes.Equal(o.Raw, b) || !bytes.Equal(wantO.Raw, b) {
				t.Fatalf("object: one pass %s, UnmarshalJSON %s, want %s", o.Raw, wantO.Raw, b)
			}
		} else if b[0] == '{' {
			t.Fatalf("object: the one-pass decoder refused an object: %s", b)
		}
		var hd, wantH ThreatHead
		if decodeFast(&hd, b) {
			if err := wantH.UnmarshalJSON(b); err != nil {
				t.Fatalf("threat head: one pass reads %+v, UnmarshalJSON refuses: %v\n%s", hd, err, b)
			}
			if !reflect.DeepEqual(hd, wantH) {
				t.Fatalf("threat head: one pass %+v\nUnmarshalJSON %+v\n%s", hd, wantH, b)
			}
		}
		// A head is the Threat's fields of the same name, whenever both
		// read the threat.
		var whole Threat
		if wholeErr, headErr := whole.UnmarshalJSON(b), wantH.UnmarshalJSON(b); wholeErr == nil {
			if headErr != nil {
				t.Fatalf("Threat reads %s, ThreatHead refuses: %v", b, headErr)
			}
			if h := headOf(&whole); !reflect.DeepEqual(h, wantH) {
				t.Fatalf("head %+v, Threat's %+v\n%s", wantH, h, b)
			}
		} else if errors.Is(wholeErr, ErrThreatNotV21) && !errors.Is(headErr, ErrThreatNotV21) {
			// A v2.0 threat is refused as one by both. (Threat may refuse
			// one without threatInfo for a member a head does not read
			// first, e.g. an agentRealtimeInfo array.)
			t.Fatalf("v2.1 check: Threat %v, ThreatHead %v\n%s", wholeErr, headErr, b)
		}
		var th, wantT Threat
		if decodeFast(&th, b) {
			if err := wantT.UnmarshalJSON(b); err != nil {
				t.Fatalf("threat: one pass reads %+v, UnmarshalJSON refuses: %v\n%s", th, err, b)
			}
			if !reflect.DeepEqual(th, wantT) {
				t.Fatalf("threat: one pass %+v\nUnmarshalJSON %+v\n%s", th, wantT, b)
			}
		}
	})
}

// TestFastPageTakesEmulatorPages: the emulator's threat and agent pages,
// which the benchmarks and the demo read, take the one-pass path too.
func TestFastPageTakesEmulatorPages(t *testing.T) {
	emu, err := emulator.New(emulator.WithRequestLog(0))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := emu.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) []byte {
		req, _ := http.NewRequest(http.MethodGet, srv.URL()+emulator.APIPrefix+path, nil)
		req.Header.Set(HeaderAuthorization, AuthScheme+" "+emulator.DefaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return b
	}
	comparePages[Threat](t, "emulator threats", get(emulator.PathThreats+"?limit=200"))
	comparePages[Agent](t, "emulator agents", get(emulator.PathAgents+"?limit=50"))
}

// TestReadAll: the body read into a buffer of the announced size is the
// body, whether the announcement is right, short, long or absent.
func TestReadAll(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	for _, size := range []int64{-1, 0, 1, 9999, 10000, 10001, 50000} {
		got, err := readAll(iotest.OneByteReader(bytes.NewReader(body)), size, 1<<20)
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("size %d: %d bytes, %v", size, len(got), err)
		}
	}
	if got, err := readAll(bytes.NewReader(body), 10000, 100); err != nil || !bytes.Equal(got, body) {
		t.Errorf("size over the limit: %d bytes, %v", len(got), err)
	}
}

// TestPlainWord: a word is plain exactly when none of its bytes ends a
// string or needs a look, for every byte in every position.
func TestPlainWord(t *testing.T) {
	base := []byte("abcdefgh")
	for pos := range 8 {
		for c := range 256 {
			w := bytes.Clone(base)
			w[pos] = byte(c)
			got := plainWord(binary.LittleEndian.Uint64(w))
			want := c >= 0x20 && c != '"' && c != '\\'
			if got && !want {
				t.Fatalf("byte %#x at %d: plain", c, pos)
			}
			if want && !got && c < 0x80 {
				t.Fatalf("byte %#x at %d: not plain", c, pos)
			}
		}
	}
}

// TestPlainASCII: ASCII without a backslash, whatever the length and the
// position of the byte that makes it otherwise.
func TestPlainASCII(t *testing.T) {
	for n := range 20 {
		b := bytes.Repeat([]byte("a"), n)
		if !plainASCII(b) {
			t.Fatalf("%q: not plain", b)
		}
		for pos := range n {
			for _, c := range []byte{'\\', 0x80, 0xc3, 0xff} {
				w := bytes.Clone(b)
				w[pos] = c
				if plainASCII(w) {
					t.Fatalf("%q: plain", w)
				}
			}
		}
	}
}

// headOf is the ThreatHead of t.
func headOf(t *Threat) ThreatHead {
	return ThreatHead{ID: t.ID, IncidentStatus: t.IncidentStatus, AnalystVerdict: t.AnalystVerdict,
		MitigationStatus: t.MitigationStatus, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, Raw: t.Raw}
}

// TestThreatHeadRefusesV20: a head, like a Threat, is refused without a
// threatInfo object, by both decoders.
func TestThreatHeadRefusesV20(t *testing.T) {
	for _, body := range []string{`{"id":"1","threatName":"x"}`, `{"id":"1","threatInfo":null}`, `{"id":"1","threatInfo":"x"}`} {
		var h ThreatHead
		if decodeFast(&h, []byte(body)) {
			t.Errorf("%s: one pass read %+v", body, h)
		}
		if err := h.UnmarshalJSON([]byte(body)); !errors.Is(err, ErrThreatNotV21) {
			t.Errorf("%s: %v, want ErrThreatNotV21", body, err)
		}
	}
}
