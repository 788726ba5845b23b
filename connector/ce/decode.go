package ce

import (
	"fmt"
	"time"

	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/nats-io/nats.go"

	"github.com/s1bridge/s1bridge/subjects"
)

// attrs collects the raw context attributes of one event before they are
// checked, so that checks run in a fixed order whatever order the headers or
// members came in.
type attrs struct {
	vals [nAttrs]string
	have uint16
}

func (a *attrs) has(i int) bool { return a.have&(1<<i) != 0 }

func (a *attrs) set(i int, v string) {
	a.vals[i] = v
	a.have |= 1 << i
}

// Decode reads the CloudEvent a NATS message carries; header may be nil.
//
// The mode is chosen as follows: a Content-Type of
// application/cloudevents+json (any case, parameters allowed) means
// structured; otherwise any "ce-*" header (any case) means binary; otherwise
// a payload with no Content-Type whose top-level JSON object has a
// "specversion" member is structured (sdk-go's NATS binding sends no
// headers); anything else is plain.
//
// Binary and structured events must carry specversion 1.0, id, source and
// type, and pass sdk-go's validation (event.EventContextV1.Validate); time and
// expirytime must be RFC 3339; every value must be valid UTF-8 without control
// characters; an attribute given twice (two headers differing only in case
// included) is refused. In every mode the data must be JSON, an empty payload
// standing for "{}", and a datacontenttype, if any, must be a JSON media type.
// Plain events come back with only Data and Mode set.
//
// Every error is a *FieldError and matches ErrInvalid; the Event returned
// with it has only Mode and ID set: Mode to the mode the message was read in
// (zero when none could be chosen), so that the error reply can follow the
// request's mode (DESIGN.md §8), and ID to the request's id whenever it can
// be read on its own (a single valid ce-id header in binary mode, a string
// id member of a well-formed structured event), so that the error reply
// carries it as correlationid. The returned Event may share memory with
// data; see Event.
func Decode(header nats.Header, data []byte) (Event, error) {
	return decode(header, data, true)
}

// DecodeReply is Decode for a binary-mode event whose reader parses the
// data itself, a reply s1bridge sent: the attributes are checked as Decode
// checks them, but the data is not scanned for valid JSON first (the
// reader's own unmarshal fails on anything else), which for a large list
// reply would be a second pass over every byte. Other modes are decoded
// exactly as Decode does.
func DecodeReply(header nats.Header, data []byte) (Event, error) {
	return decode(header, data, false)
}

func decode(header nats.Header, data []byte, checkData bool) (Event, error) {
	var (
		ct     string
		hasCT  bool
		binary bool
	)
	// nats.Header keeps names as the sender spelled them, so they are
	// compared without case here rather than looked up.
	for k, vs := range header {
		if len(vs) == 0 {
			continue
		}
		if hasPrefixFold(k, subjects.HeaderCEPrefix) {
			binary = true
			continue
		}
		if strings.EqualFold(k, subjects.HeaderContentType) {
			if hasCT || len(vs) > 1 {
				return Event{}, &FieldError{Field: subjects.HeaderContentType, Reason: reasonRepeated}
			}
			ct, hasCT = vs[0], true
		}
	}
	var (
		ev  Event
		err error
	)
	switch {
	case hasCT && strings.EqualFold(mediaType(ct), subjects.ContentTypeCloudEvent):
		ev, err = decodeStructured(data)
	case hasCT && hasPrefixFold(mediaType(ct), mediaCloudEvents):
		return Event{}, &FieldError{Field: subjects.HeaderContentType,
			Reason: "unsupported event format; only " + subjects.ContentTypeCloudEvent + " is read"}
	case binary:
		ev, err = decodeBinary(header, ct, hasCT, data, checkData)
	default:
		ev, err = decodePlain(ct, hasCT, data)
	}
	if err != nil {
		// Keep what the error reply needs: the mode, and the id when it can
		// be read.
		return Event{Mode: ev.Mode, ID: readableID(ev.Mode, header, data)}, err
	}
	return ev, nil
}

// readableID returns the id of a request that failed to decode, when it can
// be read on its own: in binary mode the one ce-id header (in any case),
// in structured mode the one id member of a well-formed JSON object, a
// string; either must be a valid attribute value. Otherwise it returns "".
func readableID(mode Mode, header nats.Header, data []byte) string {
	id, found := "", false
	switch mode {
	case ModeBinary:
		for k, vs := range header {
			if len(vs) == 0 || !strings.EqualFold(k, subjects.HeaderCEPrefix+subjects.AttrID) {
				continue
			}
			if found || len(vs) > 1 {
				return "" // given twice: which one?
			}
			v, why := unescapeHeader(vs[0])
			if why != "" {
				return ""
			}
			id, found = v, true
		}
	case ModeStructured:
		body := bytes.TrimSpace(data)
		if !json.Valid(body) {
			return ""
		}
		str := string(body)
		sc := scanner{b: body}
		sc.members(func(ks, ke int, kesc bool, vs, ve int) bool {
			if jsonString(str, ks, ke, kesc) != subjects.AttrID {
				return true
			}
			if found || body[vs] != '"' {
				id, found = "", true // given twice, or not a string
				return false
			}
			id, found = jsonString(str, vs+1, ve-1, bytes.IndexByte(body[vs+1:ve-1], '\\') >= 0), true
			return true
		})
	}
	if id == "" || checkString(id) != "" {
		return ""
	}
	return id
}

func decodePlain(ct string, hasCT bool, data []byte) (Event, error) {
	if hasCT && !isJSONMedia(ct) {
		return Event{Mode: ModePlain}, &FieldError{Field: subjects.HeaderContentType, Reason: "must be a JSON media type"}
	}
	body := bytes.TrimSpace(data)
	if len(body) == 0 {
		return Event{Mode: ModePlain, Data: json.RawMessage("{}")}, nil
	}
	if !json.Valid(body) {
		return Event{Mode: ModePlain}, &FieldError{Field: memberData, Reason: "not valid JSON", Err: syntaxError(body)}
	}
	if !hasCT && body[0] == '{' && bytes.Contains(body, []byte(`"`+subjects.AttrSpecVersion+`"`)) &&
		hasMember(body, subjects.AttrSpecVersion) {
		return decodeStructuredValid(body) // its errors carry ModeStructured
	}
	return Event{Mode: ModePlain, Data: body}, nil
}

func decodeStructured(data []byte) (Event, error) {
	body := bytes.TrimSpace(data)
	if len(body) == 0 {
		return Event{Mode: ModeStructured}, &FieldError{Field: fieldPayload, Reason: "empty structured event"}
	}
	if !json.Valid(body) {
		return Event{Mode: ModeStructured}, &FieldError{Field: fieldPayload, Reason: "malformed JSON", Err: syntaxError(body)}
	}
	if body[0] != '{' {
		return Event{Mode: ModeStructured}, &FieldError{Field: fieldPayload, Reason: "not a JSON object"}
	}
	return decodeStructuredValid(body)
}

// decodeStructuredValid decodes a JSON event format object that json.Valid
// has accepted.
func decodeStructuredValid(body []byte) (Event, error) {
	// One conversion for every attribute: the values are substrings of it.
	str := string(body)
	ev := Event{Mode: ModeStructured}
	var (
		a                  attrs
		fe                 *FieldError
		dataS, dataE       = -1, -1
		b64S, b64E         = -1, -1
		b64Esc, dataByNull bool
		// absent holds the extensions given as null or "": absent, but
		// still given, so that a repeat of one is refused like any other.
		absent []string
	)
	sc := scanner{b: body}
	sc.members(func(ks, ke int, kesc bool, vs, ve int) bool {
		key := jsonString(str, ks, ke, kesc)
		isString := body[vs] == '"'
		if i := attrIndex(key); i >= 0 {
			switch {
			case a.has(i):
				fe = &FieldError{Field: key, Reason: reasonRepeated}
			case !isString:
				fe = &FieldError{Field: key, Reason: "must be a JSON string"}
			default:
				a.set(i, jsonString(str, vs+1, ve-1, bytes.IndexByte(body[vs+1:ve-1], '\\') >= 0))
			}
			return fe == nil
		}
		switch key {
		case memberData:
			if dataS >= 0 || dataByNull {
				fe = &FieldError{Field: key, Reason: reasonRepeated}
				return false
			}
			if body[vs] == 'n' { // null: no data
				dataByNull = true
				return true
			}
			dataS, dataE = vs, ve
			return true
		case memberDataBase64:
			switch {
			case b64S >= 0:
				fe = &FieldError{Field: key, Reason: reasonRepeated}
			case !isString:
				fe = &FieldError{Field: key, Reason: "must be a JSON string"}
			default:
				b64S, b64E = vs+1, ve-1
				b64Esc = bytes.IndexByte(body[b64S:b64E], '\\') >= 0
			}
			return fe == nil
		}
		fe = structuredExtension(&ev, &absent, key, str, vs, ve)
		return fe == nil
	})
	if fe != nil {
		return Event{Mode: ModeStructured}, fe
	}
	if dataS >= 0 && b64S >= 0 {
		return Event{Mode: ModeStructured}, &FieldError{Field: memberDataBase64, Reason: "given together with data"}
	}
	checkData := false
	switch {
	case dataS >= 0:
		ev.Data = body[dataS:dataE]
	case b64S >= 0:
		raw, err := base64.StdEncoding.DecodeString(jsonString(str, b64S, b64E, b64Esc))
		if err != nil {
			return Event{Mode: ModeStructured}, &FieldError{Field: memberDataBase64, Reason: "not valid base64", Err: err}
		}
		ev.Data, checkData = raw, true
	}
	if err := finish(&ev, &a, "", subjects.AttrDataContentType, checkData); err != nil {
		return Event{Mode: ModeStructured}, err
	}
	return ev, nil
}

// structuredExtension records member key of a structured event as an
// extension. Names are lower-cased as sdk-go does; values take their
// canonical string form (CloudEvents type system): strings as they are,
// booleans "true"/"false", numbers as 32-bit integers; null and the empty
// string mean absent, as for Encode, and are noted in absent so that a
// member given twice is refused whatever its values.
func structuredExtension(ev *Event, absent *[]string, key, str string, vs, ve int) *FieldError {
	if !validExtName(key, false) {
		return &FieldError{Field: key, Reason: "invalid attribute name; ASCII letters and digits only"}
	}
	name := lowerASCII(key)
	if reservedName(name) {
		return &FieldError{Field: key, Reason: "names a context attribute; attribute names are lower case"}
	}
	var v string
	switch str[vs] {
	case '"':
		v = jsonString(str, vs+1, ve-1, strings.IndexByte(str[vs+1:ve-1], '\\') >= 0)
	case 't':
		v = "true"
	case 'f':
		v = "false"
	case 'n': // null: absent, as ""
	case '{', '[':
		return &FieldError{Field: key, Reason: "extension value must be a string, number or boolean"}
	default:
		n, err := types.ParseInteger(str[vs:ve])
		if err != nil {
			return &FieldError{Field: key, Reason: "number out of the 32-bit integer range", Err: err}
		}
		v = types.FormatInteger(n)
	}
	if _, dup := ev.Extensions[name]; dup || slices.Contains(*absent, name) {
		return &FieldError{Field: key, Reason: reasonRepeated}
	}
	if v == "" {
		*absent = append(*absent, name)
		return nil
	}
	if ev.Extensions == nil {
		ev.Extensions = make(map[string]string, 4)
	}
	ev.Extensions[name] = v
	return nil
}

func decodeBinary(header nats.Header, ct string, hasCT bool, data []byte, checkData bool) (Event, error) {
	ev := Event{Mode: ModeBinary}
	var a attrs
	for k, vs := range header {
		if len(vs) == 0 || !hasPrefixFold(k, subjects.HeaderCEPrefix) {
			continue
		}
		name := lowerASCII(k[len(subjects.HeaderCEPrefix):])
		if len(vs) > 1 {
			return Event{Mode: ModeBinary}, &FieldError{Field: subjects.HeaderCEPrefix + name, Reason: reasonRepeated}
		}
		if i := attrIndex(name); i >= 0 {
			if a.has(i) { // "ce-id" and "CE-ID"
				return Event{Mode: ModeBinary}, &FieldError{Field: subjects.HeaderCEPrefix + name, Reason: reasonRepeated}
			}
			a.set(i, vs[0])
			continue
		}
		if !validExtName(name, true) || reservedName(name) {
			return Event{Mode: ModeBinary}, &FieldError{Field: subjects.HeaderCEPrefix + name,
				Reason: "invalid attribute name; ASCII letters and digits only"}
		}
		if _, dup := ev.Extensions[name]; dup {
			return Event{Mode: ModeBinary}, &FieldError{Field: subjects.HeaderCEPrefix + name, Reason: reasonRepeated}
		}
		if ev.Extensions == nil {
			ev.Extensions = make(map[string]string, 4)
		}
		ev.Extensions[name] = vs[0]
	}
	for i := range nAttrs {
		if !a.has(i) {
			continue
		}
		v, why := unescapeHeader(a.vals[i])
		if why != "" {
			return Event{Mode: ModeBinary}, &FieldError{Field: subjects.HeaderCEPrefix + attrNames[i], Reason: why}
		}
		a.vals[i] = v
	}
	for name, raw := range ev.Extensions {
		v, why := unescapeHeader(raw)
		switch {
		case why != "":
			return Event{Mode: ModeBinary}, &FieldError{Field: subjects.HeaderCEPrefix + name, Reason: why}
		case v == "": // an empty extension is an absent one, as for Encode
			delete(ev.Extensions, name)
		default:
			ev.Extensions[name] = v
		}
	}
	dctField := hdrDataContentType
	if hasCT {
		// The binding maps datacontenttype to Content-Type; sdk-go's
		// JetStream binding writes ce-datacontenttype instead. Both are read,
		// and must agree when both are given.
		if a.has(aDataContentType) && a.vals[aDataContentType] != ct {
			return Event{Mode: ModeBinary}, &FieldError{Field: subjects.HeaderContentType, Reason: "differs from " + hdrDataContentType}
		}
		a.set(aDataContentType, ct)
		dctField = subjects.HeaderContentType
	}
	ev.Data = data
	if err := finish(&ev, &a, subjects.HeaderCEPrefix, dctField, checkData); err != nil {
		return Event{Mode: ModeBinary}, err
	}
	return ev, nil
}

// finish checks the collected attributes, fills ev with them, and checks the
// data when checkData is set (the structured decoder has already validated
// an inline data value). prefix is what the sender put before attribute
// names ("ce-" or nothing), dctField where datacontenttype came from, so
// that errors name what the sender wrote.
func finish(ev *Event, a *attrs, prefix, dctField string, checkData bool) error {
	field := func(i int) string {
		if i == aDataContentType {
			return dctField
		}
		return prefix + attrNames[i]
	}
	for i := range nAttrs {
		if !a.has(i) {
			if i <= aType { // specversion, id, source, type
				return &FieldError{Field: field(i), Reason: reasonRequired}
			}
			continue
		}
		if a.vals[i] == "" {
			return &FieldError{Field: field(i), Reason: "must not be empty"}
		}
		if why := checkString(a.vals[i]); why != "" {
			return &FieldError{Field: field(i), Reason: why}
		}
	}
	if a.vals[aSpecVersion] != subjects.SpecVersion {
		return &FieldError{Field: field(aSpecVersion), Reason: "unsupported; only " + subjects.SpecVersion + " is read"}
	}
	ev.SpecVersion = a.vals[aSpecVersion]
	ev.ID = a.vals[aID]
	ev.Source = a.vals[aSource]
	ev.Type = a.vals[aType]
	ev.Subject = a.vals[aSubject]
	ev.DataContentType = a.vals[aDataContentType]
	ev.DataSchema = a.vals[aDataSchema]

	// sdk-go's context holds source and dataschema parsed, so parsing them
	// is both our check and its input.
	ec := event.EventContextV1{ID: ev.ID, Type: ev.Type}
	src, err := url.Parse(ev.Source)
	if err != nil {
		return &FieldError{Field: field(aSource), Reason: "not a URI-reference", Err: err}
	}
	ec.Source = types.URIRef{URL: *src}
	if a.has(aTime) {
		t, err := parseTime(a.vals[aTime])
		if err != nil {
			return &FieldError{Field: field(aTime), Reason: reasonTimestamp, Err: err}
		}
		ev.Time = t
	}
	// Copies, so that the pointers sdk-go's context wants do not pin all
	// of ev to the heap.
	if a.has(aSubject) {
		subject := ev.Subject
		ec.Subject = &subject
	}
	if a.has(aDataContentType) {
		if !isJSONMedia(ev.DataContentType) {
			return &FieldError{Field: dctField, Reason: "must be a JSON media type (application/json, text/json or +json)"}
		}
		dct := ev.DataContentType
		ec.DataContentType = &dct
	}
	if a.has(aDataSchema) {
		u, err := url.Parse(ev.DataSchema)
		if err != nil {
			return &FieldError{Field: field(aDataSchema), Reason: "not a URI", Err: err}
		}
		ec.DataSchema = &types.URI{URL: *u}
	}
	if verr := ec.Validate(); verr != nil {
		for i := range nAttrs {
			if e, ok := verr[attrNames[i]]; ok {
				return &FieldError{Field: field(i), Reason: e.Error(), Err: e}
			}
		}
		for name, e := range verr {
			return &FieldError{Field: prefix + name, Reason: e.Error(), Err: e}
		}
	}
	for name, v := range ev.Extensions {
		if why := checkString(v); why != "" {
			return &FieldError{Field: prefix + name, Reason: why}
		}
	}
	if v, ok := ev.Extensions[subjects.ExtExpiryTime]; ok {
		if _, err := parseTime(v); err != nil {
			return &FieldError{Field: prefix + subjects.ExtExpiryTime, Reason: reasonTimestamp, Err: err}
		}
	}
	if !checkData {
		if len(ev.Data) == 0 {
			ev.Data = json.RawMessage("{}")
		}
		return nil
	}
	body := bytes.TrimSpace(ev.Data)
	switch {
	case len(body) == 0:
		ev.Data = json.RawMessage("{}")
	case !json.Valid(body):
		return &FieldError{Field: memberData, Reason: "not valid JSON", Err: syntaxError(body)}
	default:
		ev.Data = body
	}
	return nil
}

// syntaxError returns encoding/json's description of why b is not JSON (with
// the offset, never the text), for FieldError.Err.
func syntaxError(b []byte) error {
	var v json.RawMessage
	return json.Unmarshal(b, &v)
}

// parseTime parses an RFC 3339 timestamp that stays one in UTC: an offset
// can move year 0000 or 9999 out of the four digits RFC 3339 allows, and the
// encoder (which writes UTC) could not write it back.
func parseTime(v string) (time.Time, error) {
	t, err := types.ParseTime(v)
	if err != nil {
		return time.Time{}, err
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("%q is outside years 0000-9999 in UTC", v)
	}
	return t, nil
}
