package schema

import (
	_ "embed"
	"encoding/json"
	"sync"
)

// commentsJSON maps "<package path>.<Type>" and "<package path>.<Type>.<Field>"
// to the Go doc comment of that type (its first sentence) or field (whole),
// for the packages whose types the document describes. It is generated from
// the source by `go test ./schema -run TestComments -update`, so that
// `s1bridge schema` describes the fields without the source at hand;
// TestComments fails when it is stale.
//
//go:embed comments.json
var commentsJSON []byte

var comments = sync.OnceValue(func() map[string]string {
	var m map[string]string
	if err := json.Unmarshal(commentsJSON, &m); err != nil {
		panic("schema: comments.json: " + err.Error()) // embedded at build time
	}
	return m
})
