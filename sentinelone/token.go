package sentinelone

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// PathAPITokenDetails is the template of POST /users/api-token-details.
const PathAPITokenDetails = "/users/api-token-details"

// TokenDetails is what the console says of the client's API token. A zero
// ExpiresAt means the expiry is unknown: the console is too old to have
// /users/api-token-details, or did not give an expiresAt. That is not an
// error; Known says which case it is.
type TokenDetails struct {
	CreatedAt time.Time // zero when the console did not say
	ExpiresAt time.Time // zero when unknown
}

// Known reports whether the console gave the token's expiry.
func (d TokenDetails) Known() bool { return !d.ExpiresAt.IsZero() }

// Expiry is the expiry for people: an RFC 3339 time in UTC, or "unknown".
func (d TokenDetails) Expiry() string {
	if !d.Known() {
		return "unknown"
	}
	return d.ExpiresAt.UTC().Format(time.RFC3339)
}

// APITokenDetails asks the console when the client's API token was created
// and when it expires (POST /users/api-token-details, with the token in the
// body as the operation wants; it is redacted like the Authorization
// header). A console that does not have the operation (404 or 405, as older
// consoles answer) gives zero TokenDetails and no error; every other
// failure is an error as for any call.
func (c *Client) APITokenDetails(ctx context.Context) (TokenDetails, error) {
	var out struct {
		CreatedAt Time `json:"createdAt"`
		ExpiresAt Time `json:"expiresAt"`
	}
	body := struct {
		Data struct {
			APIToken string `json:"apiToken"`
		} `json:"data"`
	}{}
	body.Data.APIToken = c.token
	err := c.do(ctx, http.MethodPost, PathAPITokenDetails, PathAPITokenDetails, nil, body, func(b []byte) error { return decodeData(b, &out) })
	var apiErr *APIError
	switch {
	case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusNotFound || apiErr.StatusCode == http.StatusMethodNotAllowed):
		return TokenDetails{}, nil
	case err != nil:
		return TokenDetails{}, err
	}
	return TokenDetails{CreatedAt: out.CreatedAt.Time, ExpiresAt: out.ExpiresAt.Time}, nil
}
