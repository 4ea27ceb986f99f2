package crm

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Record is one row of an entity. Attrs maps logical attribute names to values
// of the Go type the attribute's AttrType names; a nil value clears the
// attribute. The primary key lives in ID, not in Attrs; the version number in
// Version (0 when unknown).
type Record struct {
	Entity  string
	ID      ID
	Version int64
	Attrs   map[string]any
}

// Ref is the value of a lookup: a pointer to another record.
//
// JSON form: {"logicalname":"account","id":"…","name":"Contoso"}. Dataverse
// spells lookups as _x_value on read and x@odata.bind on write; pimbridge
// reads and writes the object form above and also accepts
// "x@odata.bind":"/accounts(<id>)" on write.
type Ref struct {
	Entity string `json:"logicalname"`
	ID     ID     `json:"id"`
	Name   string `json:"name,omitempty"` // display name, informational
}

// Party is one entry of an activity-party list (organizer, to, cc, ...).
// Party is nil when the address could not be resolved to a record.
type Party struct {
	Party   *Ref   `json:"partyid,omitempty"`
	Address string `json:"addressused,omitempty"`
	Name    string `json:"name,omitempty"`
}

// Time formats of the JSON form.
const (
	DateTimeFormat = "2006-01-02T15:04:05Z"
	DateOnlyFormat = "2006-01-02"
)

// ETag returns the weak entity tag of a version: W/"<version>".
func ETag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// ParseETag parses W/"<version>" or "<version>" (or a bare number).
func ParseETag(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "W/")
	s = strings.Trim(s, `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: etag %q", ErrInvalidArgument, s)
	}
	return v, nil
}

// DecodeOptions tune DecodeAttrs.
type DecodeOptions struct {
	// AllowSystem accepts values for system attributes (createdon,
	// versionnumber, ...). Servers leave it false for client requests.
	AllowSystem bool
	// AllowPrimaryKey accepts the primary key attribute, which is then
	// returned as an ID value under its name.
	AllowPrimaryKey bool
}

// DecodeAttrs decodes a JSON object of attribute values for entity e, checks
// every value against its attribute, and returns them converted to their Go
// types. Annotations ("@odata.etag", "x@OData.Community.Display...") are
// ignored, except x@odata.bind, which sets lookup x. Errors are
// *AttributeError wrapping ErrInvalidArgument or ErrUnknownAttribute.
func (e *Entity) DecodeAttrs(data []byte, opts DecodeOptions) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: body is not a JSON object: %v", ErrInvalidArgument, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrInvalidArgument)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidArgument)
	}
	out := make(map[string]any, len(raw))
	for _, key := range slices.Sorted(mapsKeys(raw)) {
		msg := raw[key]
		name := key
		bind := false
		if i := strings.IndexByte(key, '@'); i >= 0 {
			if !strings.EqualFold(key[i:], "@odata.bind") {
				continue // annotation
			}
			name, bind = key[:i], true
		}
		a := e.Attr(name)
		if a == nil {
			return nil, &AttributeError{Entity: e.Name, Attribute: name, Err: ErrUnknownAttribute}
		}
		if a.Type == TypeUniqueID && !opts.AllowPrimaryKey || a.System && a.Type != TypeUniqueID && !opts.AllowSystem {
			return nil, &AttributeError{Entity: e.Name, Attribute: name, Err: fmt.Errorf("%w: set by the server", ErrInvalidArgument)}
		}
		var (
			v   any
			err error
		)
		if bind {
			v, err = decodeBind(a, msg)
		} else {
			v, err = decodeValue(a, msg)
		}
		if err == nil && v != nil {
			err = e.CheckValue(a, v)
		}
		if err != nil {
			return nil, &AttributeError{Entity: e.Name, Attribute: name, Err: err}
		}
		out[name] = v
	}
	return out, nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func typeErr(a *Attribute, want string, msg json.RawMessage) error {
	s := string(msg)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return fmt.Errorf("%w: want %s for %s attribute, got %s", ErrInvalidArgument, want, a.Type, s)
}

func decodeValue(a *Attribute, msg json.RawMessage) (any, error) {
	if string(bytes.TrimSpace(msg)) == "null" {
		return nil, nil
	}
	switch a.Type {
	case TypeString, TypeMemo:
		var s string
		if err := json.Unmarshal(msg, &s); err != nil {
			return nil, typeErr(a, "a string", msg)
		}
		return s, nil
	case TypeInteger, TypeBigInt, TypePicklist, TypeState, TypeStatus:
		var n json.Number
		if err := json.Unmarshal(msg, &n); err != nil {
			return nil, typeErr(a, "an integer", msg)
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return nil, typeErr(a, "an integer", msg)
		}
		return i, nil
	case TypeDecimal, TypeMoney:
		var n json.Number
		if err := json.Unmarshal(msg, &n); err != nil {
			return nil, typeErr(a, "a number", msg)
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, typeErr(a, "a number", msg)
		}
		return f, nil
	case TypeBoolean:
		var b bool
		if err := json.Unmarshal(msg, &b); err != nil {
			return nil, typeErr(a, "true or false", msg)
		}
		return b, nil
	case TypeDateTime, TypeDateOnly:
		var s string
		if err := json.Unmarshal(msg, &s); err != nil {
			return nil, typeErr(a, "a date string", msg)
		}
		return ParseTime(a.Type, s)
	case TypeUniqueID:
		var s string
		if err := json.Unmarshal(msg, &s); err != nil {
			return nil, typeErr(a, "a GUID string", msg)
		}
		return ParseID(s)
	case TypeLookup, TypeOwner:
		var r Ref
		if err := strictUnmarshal(msg, &r); err != nil {
			return nil, typeErr(a, `{"logicalname":…,"id":…}`, msg)
		}
		return r, nil
	case TypePartyList:
		var ps []Party
		if err := strictUnmarshal(msg, &ps); err != nil {
			return nil, typeErr(a, `a list of {"partyid":…,"addressused":…}`, msg)
		}
		if ps == nil {
			ps = []Party{}
		}
		return ps, nil
	case TypeBinary:
		var s string
		if err := json.Unmarshal(msg, &s); err != nil {
			return nil, typeErr(a, "a base64 string", msg)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, typeErr(a, "a base64 string", msg)
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: attribute type %q", ErrInvalidArgument, a.Type)
}

func strictUnmarshal(msg json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// decodeBind decodes "x@odata.bind": "/accounts(<id>)".
func decodeBind(a *Attribute, msg json.RawMessage) (any, error) {
	if a.Type != TypeLookup && a.Type != TypeOwner {
		return nil, fmt.Errorf("%w: @odata.bind on a %s attribute", ErrInvalidArgument, a.Type)
	}
	var s string
	if err := json.Unmarshal(msg, &s); err != nil {
		return nil, typeErr(a, `"/<entityset>(<id>)"`, msg)
	}
	s = strings.TrimPrefix(s, "/")
	open := strings.IndexByte(s, '(')
	if open <= 0 || !strings.HasSuffix(s, ")") {
		return nil, typeErr(a, `"/<entityset>(<id>)"`, msg)
	}
	id, err := ParseID(s[open+1 : len(s)-1])
	if err != nil {
		return nil, err
	}
	set := s[:open]
	for _, t := range a.Targets {
		if builtinSetNames[t] == set {
			return Ref{Entity: t, ID: id}, nil
		}
	}
	return nil, fmt.Errorf("%w: %q is not a target of this lookup", ErrInvalidArgument, set)
}

// ParseTime parses a datetime (RFC 3339, converted to UTC) or a date-only
// value (YYYY-MM-DD; a full datetime is accepted and truncated to its date).
func ParseTime(t AttrType, s string) (time.Time, error) {
	if t == TypeDateOnly {
		if d, err := time.Parse(DateOnlyFormat, s); err == nil {
			return d, nil
		}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: bad %s %q (want RFC 3339, e.g. 2024-05-01T09:30:00Z)", ErrInvalidArgument, t, s)
	}
	v = v.UTC()
	if t == TypeDateOnly {
		v = time.Date(v.Year(), v.Month(), v.Day(), 0, 0, 0, 0, time.UTC)
	}
	return v, nil
}

func bound(b *int64) string {
	if b == nil {
		return ""
	}
	return strconv.FormatInt(*b, 10)
}

// CheckValue checks that v has the Go type attribute a needs and respects its
// limits (length, options, targets). Callers that build records in Go
// (mapping, bridge) use it before sending.
func (e *Entity) CheckValue(a *Attribute, v any) error {
	if v == nil {
		return nil
	}
	bad := func() error { return fmt.Errorf("%w: %T is not a valid %s value", ErrInvalidArgument, v, a.Type) }
	switch a.Type {
	case TypeString, TypeMemo:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if !utf8.ValidString(s) {
			return fmt.Errorf("%w: not valid UTF-8", ErrInvalidArgument)
		}
		if a.MaxLength > 0 && utf8.RuneCountInString(s) > a.MaxLength {
			return fmt.Errorf("%w: %d characters, at most %d allowed", ErrInvalidArgument, utf8.RuneCountInString(s), a.MaxLength)
		}
	case TypeInteger, TypeBigInt, TypeState, TypeStatus:
		n, ok := v.(int64)
		if !ok {
			return bad()
		}
		if a.MinValue != nil && n < *a.MinValue || a.MaxValue != nil && n > *a.MaxValue {
			return fmt.Errorf("%w: %d out of range %s..%s", ErrInvalidArgument, n, bound(a.MinValue), bound(a.MaxValue))
		}
	case TypePicklist:
		n, ok := v.(int64)
		if !ok {
			return bad()
		}
		if len(a.Options) > 0 && !slices.ContainsFunc(a.Options, func(o Option) bool { return o.Value == n }) {
			return fmt.Errorf("%w: %d is not an option", ErrInvalidArgument, n)
		}
	case TypeDecimal, TypeMoney:
		if _, ok := v.(float64); !ok {
			return bad()
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			return bad()
		}
	case TypeDateTime, TypeDateOnly:
		t, ok := v.(time.Time)
		if !ok {
			return bad()
		}
		if t.Year() < 1753 || t.Year() > 9999 {
			return fmt.Errorf("%w: date %s out of range 1753..9999", ErrInvalidArgument, t.Format(DateOnlyFormat))
		}
	case TypeUniqueID:
		if _, ok := v.(ID); !ok {
			return bad()
		}
	case TypeLookup, TypeOwner:
		r, ok := v.(Ref)
		if !ok {
			return bad()
		}
		if !slices.Contains(a.Targets, r.Entity) {
			return fmt.Errorf("%w: lookup to %q, want one of %v", ErrInvalidArgument, r.Entity, a.Targets)
		}
		if r.ID == (ID{}) {
			return fmt.Errorf("%w: lookup without id", ErrInvalidArgument)
		}
	case TypePartyList:
		ps, ok := v.([]Party)
		if !ok {
			return bad()
		}
		for i, p := range ps {
			if p.Party == nil && p.Address == "" {
				return fmt.Errorf("%w: party %d has neither partyid nor addressused", ErrInvalidArgument, i)
			}
			if p.Party != nil && (p.Party.ID == (ID{}) || !slices.Contains([]string{EntitySystemUser, EntityAccount, EntityContact}, p.Party.Entity)) {
				return fmt.Errorf("%w: party %d must point at a systemuser, account or contact", ErrInvalidArgument, i)
			}
		}
	case TypeBinary:
		if _, ok := v.([]byte); !ok {
			return bad()
		}
	default:
		return bad()
	}
	return nil
}

// encodeValue returns the JSON form of a value of attribute a.
func encodeValue(a *Attribute, v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		if a.Type == TypeDateOnly {
			return x.UTC().Format(DateOnlyFormat)
		}
		return x.UTC().Format(DateTimeFormat)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	}
	return v
}

// MarshalRecord returns the JSON form of r: its attributes in sorted order,
// the primary key, and @odata.etag when the version is known. Only the
// attributes present in r.Attrs are written, so a $select result stays small.
func (e *Entity) MarshalRecord(r Record) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	field := func(k string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("crm: encode %s.%s: %w", e.Name, k, err)
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(b)
		return nil
	}
	if r.Version > 0 {
		if err := field("@odata.etag", ETag(r.Version)); err != nil {
			return nil, err
		}
	}
	if r.ID != (ID{}) {
		if err := field(e.PrimaryKey, r.ID.String()); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(mapsKeys(r.Attrs)) {
		if k == e.PrimaryKey {
			continue
		}
		a := e.Attr(k)
		if a == nil {
			return nil, &AttributeError{Entity: e.Name, ID: r.ID, Attribute: k, Err: ErrUnknownAttribute}
		}
		if err := field(k, encodeValue(a, r.Attrs[k])); err != nil {
			return nil, err
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalRecord is the inverse of MarshalRecord: it reads a record of
// entity e including its primary key, system attributes and @odata.etag.
func (e *Entity) UnmarshalRecord(data []byte) (Record, error) {
	attrs, err := e.DecodeAttrs(data, DecodeOptions{AllowSystem: true, AllowPrimaryKey: true})
	if err != nil {
		return Record{}, err
	}
	r := Record{Entity: e.Name, Attrs: attrs}
	if id, ok := attrs[e.PrimaryKey].(ID); ok {
		r.ID = id
		delete(attrs, e.PrimaryKey)
	}
	var meta struct {
		ETag string `json:"@odata.etag"`
	}
	if err := json.Unmarshal(data, &meta); err == nil && meta.ETag != "" {
		if r.Version, err = ParseETag(meta.ETag); err != nil {
			return Record{}, err
		}
	}
	if v, ok := attrs["versionnumber"].(int64); ok && r.Version == 0 {
		r.Version = v
	}
	return r, nil
}

// ErrorCode returns the stable API error code for err (the "code" of a JSON
// error body), derived from the sentinel it wraps.
func ErrorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

var errorCodes = []struct {
	err  error
	code string
}{
	{ErrUnknownEntity, "unknown_entity"},
	{ErrUnknownAttribute, "unknown_attribute"},
	{ErrInvalidID, "invalid_id"},
	{ErrRequired, "required_attribute_missing"},
	{ErrNotFound, "not_found"},
	{ErrPreconditionFailed, "precondition_failed"},
	{ErrDuplicate, "duplicate_record"},
	{ErrStalePrimary, "stale_primary"},
	{ErrConflict, "conflict"},
	{ErrReadOnly, "record_read_only"},
	{ErrUnauthenticated, "unauthenticated"},
	{ErrForbidden, "forbidden"},
	{ErrUnavailable, "message_unavailable"},
	{ErrInvalidArgument, "invalid_argument"},
}
