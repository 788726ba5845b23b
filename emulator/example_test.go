package emulator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/s1bridge/s1bridge/emulator"
)

// An emulator on a loopback port, asked for one threat with the API token.
func Example() {
	emu, err := emulator.New(emulator.WithSeed(42), emulator.WithToken("t0ken"))
	if err != nil {
		panic(err)
	}
	srv, err := emu.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL()+emulator.APIPrefix+"/threats?limit=1&incidentStatuses=unresolved", nil)
	req.Header.Set("Authorization", "ApiToken t0ken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"), emu.RequestCount("/threats"))
	// Output: 200 application/json 1
}

// Faults make the next calls fail the way a real console does under load.
func ExampleEmulator_Inject() {
	emu, _ := emulator.New()
	srv, _ := emu.Start("")
	defer srv.Close()
	_ = emu.Inject(emulator.Fault{Path: "/threats", Kind: emulator.FaultRateLimit, RetryAfter: "1", HTML: true, Count: 1})

	get := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL()+emulator.APIPrefix+"/threats", nil)
		req.Header.Set("Authorization", emulator.AuthScheme+" "+emulator.DefaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	fmt.Println(get())
	fmt.Println(get())
	// Output:
	// 429 1
	// 200
}

// Live mode keeps a demo console moving until its context ends.
func ExampleEmulator_RunLive() {
	emu, _ := emulator.New()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	fmt.Println(emu.RunLive(ctx, 10*time.Millisecond))
	// Output: <nil>
}
