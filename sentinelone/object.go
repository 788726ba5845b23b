package sentinelone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
)

// Object is a list item kept as SentinelOne sent it: the page was checked to
// be JSON and the item to be an object, and nothing else of it was read.
// A caller that passes items on unchanged (a list reply carries
// SentinelOne's objects as they are) asks for Objects instead of decoding
// every member of every item into a type it would not look at.
type Object struct {
	Raw json.RawMessage
}

// noFields is the member set of Object: none.
var noFields = newFields()

func (*Object) fastFields() *fields                       { return noFields }
func (*Object) readMember(int, []byte, *itemScratch) bool { return true }
func (o *Object) finish(raw []byte, _ *itemScratch) bool  { o.Raw = raw; return true }

// UnmarshalJSON keeps data if it is an object.
func (o *Object) UnmarshalJSON(data []byte) error {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("sentinelone: list item is not an object: %.20s", data)
	}
	o.Raw = bytes.Clone(data)
	return nil
}

// ListAgentObjects is ListAgents with each agent kept as sent (Object), for
// callers that pass the agents on rather than read them.
func (c *Client) ListAgentObjects(ctx context.Context, f AgentFilter) (*Page[Object], error) {
	return list[Object](ctx, c, PathAgents, f.Values())
}
