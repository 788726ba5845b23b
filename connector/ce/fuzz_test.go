package ce

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// FuzzDecode feeds Decode arbitrary headers and payloads (seeds in
// testdata/fuzz/FuzzDecode: binary, structured and plain requests). headers
// holds one "Name: value" per line, names kept in the case given. Beyond
// never panicking, Decode must refuse only with a *FieldError matching
// ErrInvalid, return JSON data, and every event it accepts in binary or
// structured mode must survive Encode and Decode again in both modes.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, contentType, headers string, payload []byte) {
		h := nats.Header{}
		if contentType != "" {
			h["Content-Type"] = []string{contentType}
		}
		for line := range strings.SplitSeq(headers, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok {
				h[name] = append(h[name], strings.TrimPrefix(value, " "))
			}
		}
		ev, err := Decode(h, payload)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v (%T) is not a *FieldError matching ErrInvalid", err, err)
			}
			return
		}
		if !json.Valid(ev.Data) {
			t.Fatalf("accepted data that is not JSON: %q", ev.Data)
		}
		if ev.Mode == ModePlain {
			return
		}
		for _, mode := range []Mode{ModeBinary, ModeStructured} {
			h2, p2, err := Encode(ev, mode)
			if err != nil {
				t.Fatalf("Encode(%v) of a decoded event: %v\nevent %+v", mode, err, ev)
			}
			back, err := Decode(h2, p2)
			if err != nil {
				t.Fatalf("Decode(Encode(%v)): %v\nheaders %v\npayload %q", mode, err, h2, p2)
			}
			want := ev
			want.Mode = mode
			if want.DataContentType == "" {
				want.DataContentType = "application/json"
			}
			eqAttrs(t, back, want)
			if !bytes.Equal(back.Data, ev.Data) {
				t.Errorf("Data after %v round trip = %q, want %q", mode, back.Data, ev.Data)
			}
		}
	})
}
