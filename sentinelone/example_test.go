package sentinelone_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/s1bridge/s1bridge/sentinelone"
)

// A console with two pages of threats, the second ending with the string
// "null" some consoles send instead of JSON null.
func exampleConsole() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "ApiToken example-token" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":4010010,"title":"Authentication Failed","detail":null}]}`)
			return
		}
		next, id := `"c2"`, "1938475610293847561"
		if r.URL.Query().Get("cursor") == "c2" {
			next, id = `"null"`, "1938475610293847562"
		}
		fmt.Fprintf(w, `{"data":[{"id":%q,"threatInfo":{"incidentStatus":"unresolved","updatedAt":"2024-05-01T08:12:10.002311Z"}}],
			"pagination":{"nextCursor":%s,"totalItems":2}}`, id, next)
	}))
}

func ExampleClient_ThreatPages() {
	srv := exampleConsole()
	defer srv.Close()
	c, err := sentinelone.New(sentinelone.Config{BaseURL: srv.URL, Token: "example-token"})
	if err != nil {
		panic(err)
	}
	f := sentinelone.ThreatFilter{IncidentStatuses: []string{sentinelone.IncidentUnresolved}, SortBy: "updatedAt", SortOrder: sentinelone.SortAsc, Limit: 1000}
	for page, err := range c.ThreatPages(context.Background(), f) {
		if err != nil {
			panic(err)
		}
		for _, t := range page.Items {
			fmt.Println(t.ID, t.IncidentStatus, t.UpdatedAt.Format(sentinelone.TimeFormat))
		}
		// Commit a watermark here: each page is complete when yielded.
	}
	// Output:
	// 1938475610293847561 unresolved 2024-05-01T08:12:10.002311Z
	// 1938475610293847562 unresolved 2024-05-01T08:12:10.002311Z
}

func ExampleAPIError() {
	srv := exampleConsole()
	defer srv.Close()
	c, _ := sentinelone.New(sentinelone.Config{BaseURL: srv.URL, Token: "wrong-token"})
	_, err := c.SystemInfo(context.Background())
	var apiErr *sentinelone.APIError
	fmt.Println(errors.Is(err, sentinelone.ErrUnauthorized), errors.As(err, &apiErr) && apiErr.Code == sentinelone.CodeAuthFailed)
	fmt.Println(err)
	// Output:
	// true true
	// sentinelone: GET /system/info: HTTP 401: Authentication Failed (code 4010010)
}
