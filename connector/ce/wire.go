package ce

import (
	"strings"
	"unicode/utf8"

	"github.com/s1bridge/s1bridge/subjects"
)

// Binary-mode header names, lower case as the binding writes them; derived
// from the wire names in package subjects.
const (
	hdrSpecVersion     = subjects.HeaderCEPrefix + subjects.AttrSpecVersion
	hdrID              = subjects.HeaderCEPrefix + subjects.AttrID
	hdrSource          = subjects.HeaderCEPrefix + subjects.AttrSource
	hdrType            = subjects.HeaderCEPrefix + subjects.AttrType
	hdrSubject         = subjects.HeaderCEPrefix + subjects.AttrSubject
	hdrTime            = subjects.HeaderCEPrefix + subjects.AttrTime
	hdrDataSchema      = subjects.HeaderCEPrefix + subjects.AttrDataSchema
	hdrCorrelationID   = subjects.HeaderCEPrefix + subjects.ExtCorrelationID
	hdrExpiryTime      = subjects.HeaderCEPrefix + subjects.ExtExpiryTime
	hdrTraceParent     = subjects.HeaderCEPrefix + subjects.ExtTraceParent
	hdrTraceState      = subjects.HeaderCEPrefix + subjects.ExtTraceState
	hdrDataContentType = subjects.HeaderCEPrefix + subjects.AttrDataContentType
)

// Names of the CloudEvents JSON format that package subjects does not define,
// because only this codec needs them.
const (
	// memberData and memberDataBase64 hold the data in a structured event:
	// a JSON value, or base64 text for bytes.
	memberData       = "data"
	memberDataBase64 = "data_base64"
	// mediaCloudEvents prefixes every event format media type
	// (application/cloudevents+json, application/cloudevents-batch+json, ...);
	// only subjects.ContentTypeCloudEvent is supported.
	mediaCloudEvents = "application/cloudevents"
	// mediaTextJSON is the other media type sdk-go writes data inline for.
	mediaTextJSON = "text/json"
	// fieldPayload names the whole payload in errors about a structured event
	// that is not a JSON object.
	fieldPayload = "payload"
)

// Error reasons used more than once.
const (
	reasonTimestamp = "not an RFC 3339 timestamp"
	reasonRepeated  = "given more than once"
	reasonRequired  = "required"
)

// Attribute indexes into attrs, in the order Decode checks them, so that a
// request with several faults always gets the same message.
const (
	aSpecVersion = iota
	aID
	aSource
	aType
	aSubject
	aTime
	aDataContentType
	aDataSchema
	nAttrs
)

var attrNames = [nAttrs]string{
	subjects.AttrSpecVersion,
	subjects.AttrID,
	subjects.AttrSource,
	subjects.AttrType,
	subjects.AttrSubject,
	subjects.AttrTime,
	subjects.AttrDataContentType,
	subjects.AttrDataSchema,
}

// attrIndex returns the index of a lower-case context attribute name, or -1.
func attrIndex(name string) int {
	switch name {
	case subjects.AttrSpecVersion:
		return aSpecVersion
	case subjects.AttrID:
		return aID
	case subjects.AttrSource:
		return aSource
	case subjects.AttrType:
		return aType
	case subjects.AttrSubject:
		return aSubject
	case subjects.AttrTime:
		return aTime
	case subjects.AttrDataContentType:
		return aDataContentType
	case subjects.AttrDataSchema:
		return aDataSchema
	}
	return -1
}

// extHeader returns the binary-mode header of extension name, without
// allocating for the extensions s1bridge itself writes.
func extHeader(name string) string {
	switch name {
	case subjects.ExtCorrelationID:
		return hdrCorrelationID
	case subjects.ExtExpiryTime:
		return hdrExpiryTime
	case subjects.ExtTraceParent:
		return hdrTraceParent
	case subjects.ExtTraceState:
		return hdrTraceState
	}
	return subjects.HeaderCEPrefix + name
}

// validExtName reports whether name is a CloudEvents attribute name as sdk-go
// accepts it: ASCII letters and digits only. Decode lower-cases it; Encode
// requires lower case, as the specification does.
func validExtName(name string, lowerOnly bool) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || !lowerOnly && c >= 'A' && c <= 'Z' {
			continue
		}
		return false
	}
	return true
}

// reservedName reports whether an extension may not take name because the
// event format uses it.
func reservedName(name string) bool {
	return attrIndex(name) >= 0 || name == memberData || name == memberDataBase64
}

// hasPrefixFold reports whether s starts with the lower-case ASCII prefix,
// ignoring case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// lowerASCII lower-cases s, returning s itself (no allocation) when it has no
// upper-case ASCII letter: header names usually arrive lower case.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// mediaType returns the media type of a Content-Type value: what precedes any
// parameter, without surrounding spaces, case unchanged.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// isJSONMedia reports whether Content-Type ct declares JSON: application/json,
// text/json or a +json structured suffix (RFC 6839), in any case.
func isJSONMedia(ct string) bool {
	mt := mediaType(ct)
	return strings.EqualFold(mt, subjects.ContentTypeJSON) ||
		strings.EqualFold(mt, mediaTextJSON) ||
		len(mt) > len("+json") && strings.EqualFold(mt[len(mt)-len("+json"):], "+json")
}

// isInlineJSONMedia reports whether Encode may write data of Content-Type ct
// inline as a JSON value in a structured event: only for the media types
// sdk-go itself treats as JSON there (and for none), because sdk-go reads
// data of any other type, +json ones included, as a JSON string.
func isInlineJSONMedia(ct string) bool {
	if ct == "" {
		return true
	}
	mt := mediaType(ct)
	return strings.EqualFold(mt, subjects.ContentTypeJSON) || strings.EqualFold(mt, mediaTextJSON)
}

// checkString returns "" when s may be a CloudEvents String (valid UTF-8
// without the control characters U+0000-U+001F and U+007F-U+009F, which the
// type system forbids), else why not.
func checkString(s string) string {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return "control character not allowed"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "invalid UTF-8"
		}
		if r <= 0x9f {
			return "control character not allowed"
		}
		i += size
	}
	return ""
}

// needsEscape reports whether byte c of a header value must be
// percent-encoded (HTTP binding §3.1.3.2): space, '"', '%', and every byte
// outside printable ASCII (so each byte of a multi-byte UTF-8 sequence).
func needsEscape(c byte) bool {
	return c <= ' ' || c == '"' || c == '%' || c >= 0x7f
}

const upperHex = "0123456789ABCDEF"

// escapeHeader percent-encodes a header value, returning v itself when
// nothing needs encoding, which is the common case (ids, types, times).
func escapeHeader(v string) string {
	n := 0
	for i := 0; i < len(v); i++ {
		if needsEscape(v[i]) {
			n++
		}
	}
	if n == 0 {
		return v
	}
	b := make([]byte, 0, len(v)+2*n)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if needsEscape(c) {
			b = append(b, '%', upperHex[c>>4], upperHex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return string(b)
}

// unescapeHeader undoes the header encoding of the HTTP binding §3.1.3.2: a
// value wholly in double quotes is first unquoted (RFC 7230 quoted-string,
// which the binding says receivers must still accept), then one round of
// percent-decoding is applied. Characters that should have been encoded but
// were not (raw spaces, raw UTF-8, as sdk-go writes them) are kept as they
// are. It returns v itself when there is nothing to decode. The result is not
// checked for UTF-8 here; checkString does that once for every attribute.
func unescapeHeader(v string) (string, string) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var why string
		if v, why = unquote(v[1 : len(v)-1]); why != "" {
			return "", why
		}
	}
	i := strings.IndexByte(v, '%')
	if i < 0 {
		return v, ""
	}
	b := make([]byte, 0, len(v))
	b = append(b, v[:i]...)
	for ; i < len(v); i++ {
		c := v[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(v) {
			return "", "truncated percent-encoding"
		}
		hi, ok1 := unhex(v[i+1])
		lo, ok2 := unhex(v[i+2])
		if !ok1 || !ok2 {
			return "", "malformed percent-encoding"
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), ""
}

// unquote returns the content of an RFC 7230 quoted-string without its
// quotes: a backslash escapes the next character, and a bare '"' is an error.
func unquote(q string) (string, string) {
	if strings.IndexByte(q, '\\') < 0 {
		if strings.IndexByte(q, '"') >= 0 {
			return "", "malformed quoted string"
		}
		return q, ""
	}
	b := make([]byte, 0, len(q))
	for i := 0; i < len(q); i++ {
		switch c := q[i]; c {
		case '\\':
			if i+1 == len(q) {
				return "", "malformed quoted string"
			}
			i++
			b = append(b, q[i])
		case '"':
			return "", "malformed quoted string"
		default:
			b = append(b, c)
		}
	}
	return string(b), ""
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
