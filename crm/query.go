package crm

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Query is a parsed OData query: $select, $filter, $orderby and $top.
// Attribute names in it are checked against an entity by Entity.CheckQuery;
// stores compile it to parameterised SQL and never splice values into text.
type Query struct {
	Select  []string // empty: all attributes
	Filter  Expr     // nil: every record
	OrderBy []Order
	Top     int // 0: no limit
}

// Order is one $orderby item.
type Order struct {
	Attr string
	Desc bool
}

// Expr is a node of a $filter expression: *Compare, *Logical, *Not or *Func.
type Expr interface{ expr() }

// Compare is `attr op value` with op one of eq ne gt ge lt le.
type Compare struct {
	Attr  string
	Op    string
	Value Literal
}

// Logical is `left and right` or `left or right`.
type Logical struct {
	Op          string // "and" or "or"
	Left, Right Expr
}

// Not is `not expr`.
type Not struct{ X Expr }

// Func is a boolean function call: contains(attr,'s'), startswith(attr,'s'),
// endswith(attr,'s'), or the pimbridge extension isparty(@me), true when
// the user is a party (organizer, attendee, from, to, cc, bcc) of an
// activity.
type Func struct {
	Name  string
	Attr  string // empty for isparty
	Value Literal
}

func (*Compare) expr() {}
func (*Logical) expr() {}
func (*Not) expr()     {}
func (*Func) expr()    {}

// LiteralKind tells how a literal was written.
type LiteralKind int

// Literal kinds. KindMe and KindNow are pimbridge extensions used by local
// data filters: @me is the calling user's systemuserid, @now-30d is the
// current time minus 30 days (d, h and m units; @now alone is now).
const (
	KindNull LiteralKind = iota
	KindString
	KindNumber
	KindBool
	KindGUID
	KindDateTime
	KindMe
	KindNow
)

// Literal is a constant in a $filter expression. Raw keeps the text for
// numbers; Str the unquoted string; Offset the duration of @now-N.
type Literal struct {
	Kind   LiteralKind
	Str    string
	Bool   bool
	ID     ID
	Time   time.Time
	Offset time.Duration
}

// maxFilterLen and maxFilterDepth bound hostile input.
const (
	maxFilterLen   = 8192
	maxFilterDepth = 64
)

// ParseFilter parses an OData $filter expression. Grammar: or-expressions of
// and-expressions of `not x`, `(x)`, comparisons `attr op literal` and the
// functions of Func. Literals: 'string' (” escapes a quote), numbers, true,
// false, null, bare GUIDs, RFC 3339 date-times, @me and @now[-Nd|h|m].
// Attribute names are [a-z_][a-z0-9_]*; Dataverse's _x_value spelling of a
// lookup is accepted and mapped to x. Errors wrap ErrInvalidArgument.
func ParseFilter(s string) (Expr, error) {
	if len(s) > maxFilterLen {
		return nil, fmt.Errorf("%w: $filter longer than %d bytes", ErrInvalidArgument, maxFilterLen)
	}
	p := &filterParser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	e, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, p.errf("unexpected %q", p.toks[p.pos].text)
	}
	return e, nil
}

type tokKind int

const (
	tIdent tokKind = iota
	tString
	tNumber
	tLParen
	tRParen
	tComma
	tAt
)

type token struct {
	kind tokKind
	text string
	at   int
}

type filterParser struct {
	src  string
	toks []token
	pos  int
}

func (p *filterParser) errf(format string, args ...any) error {
	return fmt.Errorf("%w: $filter: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}

func (p *filterParser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			p.toks = append(p.toks, token{tLParen, "(", i})
			i++
		case c == ')':
			p.toks = append(p.toks, token{tRParen, ")", i})
			i++
		case c == ',':
			p.toks = append(p.toks, token{tComma, ",", i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(s) {
					return p.errf("unterminated string at %d", i)
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(s[j])
				j++
			}
			p.toks = append(p.toks, token{tString, b.String(), i})
			i = j + 1
		case c == '@':
			j := i + 1
			for j < len(s) && (isWordByte(s[j]) || s[j] == '-') {
				j++
			}
			p.toks = append(p.toks, token{tAt, s[i:j], i})
			i = j
		case isWordByte(c) || c == '-' || c == '+' || c == '.':
			// identifiers, numbers, GUIDs and date-times are one word
			j := i
			for j < len(s) && (isWordByte(s[j]) || strings.IndexByte("-+.:", s[j]) >= 0) {
				j++
			}
			w := s[i:j]
			k := tIdent
			if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' {
				k = tNumber
			}
			p.toks = append(p.toks, token{k, w, i})
			i = j
		default:
			r := rune(c)
			if c >= 0x80 {
				r = []rune(s[i:])[0]
			}
			if unicode.IsPrint(r) {
				return p.errf("unexpected character %q at %d", r, i)
			}
			return p.errf("unexpected character %U at %d", r, i)
		}
	}
	return nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func (p *filterParser) peek() *token {
	if p.pos < len(p.toks) {
		return &p.toks[p.pos]
	}
	return nil
}

func (p *filterParser) keyword(w string) bool {
	t := p.peek()
	if t != nil && t.kind == tIdent && t.text == w {
		p.pos++
		return true
	}
	return false
}

func (p *filterParser) parseOr(depth int) (Expr, error) {
	if depth > maxFilterDepth {
		return nil, p.errf("nested too deeply")
	}
	l, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("or") {
		r, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		l = &Logical{Op: "or", Left: l, Right: r}
	}
	return l, nil
}

func (p *filterParser) parseAnd(depth int) (Expr, error) {
	l, err := p.parseUnary(depth)
	if err != nil {
		return nil, err
	}
	for p.keyword("and") {
		r, err := p.parseUnary(depth)
		if err != nil {
			return nil, err
		}
		l = &Logical{Op: "and", Left: l, Right: r}
	}
	return l, nil
}

func (p *filterParser) parseUnary(depth int) (Expr, error) {
	if depth > maxFilterDepth {
		return nil, p.errf("nested too deeply")
	}
	if p.keyword("not") {
		x, err := p.parseUnary(depth + 1)
		if err != nil {
			return nil, err
		}
		return &Not{X: x}, nil
	}
	t := p.peek()
	if t == nil {
		return nil, p.errf("unexpected end")
	}
	if t.kind == tLParen {
		p.pos++
		e, err := p.parseOr(depth + 1)
		if err != nil {
			return nil, err
		}
		if t := p.peek(); t == nil || t.kind != tRParen {
			return nil, p.errf("missing )")
		}
		p.pos++
		return e, nil
	}
	if t.kind != tIdent {
		return nil, p.errf("expected an attribute name at %d, got %q", t.at, t.text)
	}
	p.pos++
	if n := p.peek(); n != nil && n.kind == tLParen {
		return p.parseFunc(t.text)
	}
	attr, err := attrName(t.text)
	if err != nil {
		return nil, p.errf("%v", err)
	}
	op := p.peek()
	if op == nil || op.kind != tIdent {
		return nil, p.errf("expected an operator after %s", attr)
	}
	switch op.text {
	case "eq", "ne", "gt", "ge", "lt", "le":
	default:
		return nil, p.errf("unknown operator %q", op.text)
	}
	p.pos++
	lit, err := p.parseLiteral()
	if err != nil {
		return nil, err
	}
	return &Compare{Attr: attr, Op: op.text, Value: lit}, nil
}

func (p *filterParser) parseFunc(name string) (Expr, error) {
	p.pos++ // (
	switch name {
	case "contains", "startswith", "endswith":
		t := p.peek()
		if t == nil || t.kind != tIdent {
			return nil, p.errf("%s: expected an attribute name", name)
		}
		attr, err := attrName(t.text)
		if err != nil {
			return nil, p.errf("%v", err)
		}
		p.pos++
		if t := p.peek(); t == nil || t.kind != tComma {
			return nil, p.errf("%s: expected ,", name)
		}
		p.pos++
		lit, err := p.parseLiteral()
		if err != nil {
			return nil, err
		}
		if lit.Kind != KindString {
			return nil, p.errf("%s: expected a string", name)
		}
		if t := p.peek(); t == nil || t.kind != tRParen {
			return nil, p.errf("%s: missing )", name)
		}
		p.pos++
		return &Func{Name: name, Attr: attr, Value: lit}, nil
	case "isparty":
		lit, err := p.parseLiteral()
		if err != nil {
			return nil, err
		}
		if lit.Kind != KindMe && lit.Kind != KindGUID {
			return nil, p.errf("isparty: expected @me or a GUID")
		}
		if t := p.peek(); t == nil || t.kind != tRParen {
			return nil, p.errf("isparty: missing )")
		}
		p.pos++
		return &Func{Name: name, Value: lit}, nil
	}
	return nil, p.errf("unknown function %q", name)
}

func attrName(s string) (string, error) {
	if strings.HasPrefix(s, "_") && strings.HasSuffix(s, "_value") && len(s) > len("__value") {
		s = s[1 : len(s)-len("_value")]
	}
	if !validName(s) {
		return "", fmt.Errorf("bad attribute name %q", s)
	}
	return s, nil
}

func (p *filterParser) parseLiteral() (Literal, error) {
	t := p.peek()
	if t == nil {
		return Literal{}, p.errf("expected a value")
	}
	p.pos++
	switch t.kind {
	case tString:
		return Literal{Kind: KindString, Str: t.text}, nil
	case tAt:
		switch {
		case t.text == "@me":
			return Literal{Kind: KindMe}, nil
		case t.text == "@now":
			return Literal{Kind: KindNow}, nil
		case strings.HasPrefix(t.text, "@now-") && len(t.text) > 6:
			num, unit := t.text[5:len(t.text)-1], t.text[len(t.text)-1]
			n, err := strconv.Atoi(num)
			if err != nil || n < 0 || n > 100000 {
				return Literal{}, p.errf("bad relative time %q", t.text)
			}
			var d time.Duration
			switch unit {
			case 'd':
				d = time.Duration(n) * 24 * time.Hour
			case 'h':
				d = time.Duration(n) * time.Hour
			case 'm':
				d = time.Duration(n) * time.Minute
			default:
				return Literal{}, p.errf("bad relative time %q", t.text)
			}
			return Literal{Kind: KindNow, Offset: d}, nil
		}
		return Literal{}, p.errf("unknown parameter %q", t.text)
	case tIdent:
		switch t.text {
		case "null":
			return Literal{Kind: KindNull}, nil
		case "true", "false":
			return Literal{Kind: KindBool, Bool: t.text == "true"}, nil
		}
		if id, err := ParseID(t.text); err == nil {
			return Literal{Kind: KindGUID, ID: id, Str: t.text}, nil
		}
		return Literal{}, p.errf("expected a value, got %q", t.text)
	case tNumber:
		if id, err := ParseID(t.text); err == nil {
			return Literal{Kind: KindGUID, ID: id, Str: t.text}, nil
		}
		if strings.ContainsAny(t.text, "T:") || strings.Count(t.text, "-") == 2 && !strings.HasPrefix(t.text, "-") {
			for _, layout := range []string{time.RFC3339Nano, DateOnlyFormat} {
				if tm, err := time.Parse(layout, t.text); err == nil {
					return Literal{Kind: KindDateTime, Time: tm.UTC(), Str: t.text}, nil
				}
			}
			return Literal{}, p.errf("bad date-time %q", t.text)
		}
		if _, err := strconv.ParseFloat(t.text, 64); err != nil {
			return Literal{}, p.errf("bad number %q", t.text)
		}
		return Literal{Kind: KindNumber, Str: t.text}, nil
	}
	return Literal{}, p.errf("expected a value, got %q", t.text)
}

// ParseQuery parses the OData system query options $select (comma list),
// $filter, $orderby (attr [asc|desc], ...) and $top. get returns the raw
// value of an option ("" when absent), e.g. url.Values.Get.
func ParseQuery(get func(string) string) (Query, error) {
	var q Query
	if s := strings.TrimSpace(get("$select")); s != "" {
		for _, f := range strings.Split(s, ",") {
			n, err := attrName(strings.TrimSpace(f))
			if err != nil {
				return q, fmt.Errorf("%w: $select: %v", ErrInvalidArgument, err)
			}
			q.Select = append(q.Select, n)
		}
	}
	if s := strings.TrimSpace(get("$filter")); s != "" {
		e, err := ParseFilter(s)
		if err != nil {
			return q, err
		}
		q.Filter = e
	}
	if s := strings.TrimSpace(get("$orderby")); s != "" {
		for _, f := range strings.Split(s, ",") {
			parts := strings.Fields(f)
			if len(parts) == 0 || len(parts) > 2 {
				return q, fmt.Errorf("%w: $orderby: bad item %q", ErrInvalidArgument, f)
			}
			n, err := attrName(parts[0])
			if err != nil {
				return q, fmt.Errorf("%w: $orderby: %v", ErrInvalidArgument, err)
			}
			o := Order{Attr: n}
			if len(parts) == 2 {
				switch parts[1] {
				case "asc":
				case "desc":
					o.Desc = true
				default:
					return q, fmt.Errorf("%w: $orderby: bad direction %q", ErrInvalidArgument, parts[1])
				}
			}
			q.OrderBy = append(q.OrderBy, o)
		}
	}
	if s := strings.TrimSpace(get("$top")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("%w: $top: want a non-negative integer, got %q", ErrInvalidArgument, s)
		}
		q.Top = n
	}
	return q, nil
}

// CheckQuery checks that every attribute q names exists on e and that every
// literal fits its attribute's type, so that a store can compile q without
// further checks.
func (e *Entity) CheckQuery(q Query) error {
	for _, n := range q.Select {
		if n != e.PrimaryKey && e.Attr(n) == nil {
			return &AttributeError{Entity: e.Name, Attribute: n, Err: ErrUnknownAttribute}
		}
	}
	for _, o := range q.OrderBy {
		a := e.Attr(o.Attr)
		if a == nil {
			return &AttributeError{Entity: e.Name, Attribute: o.Attr, Err: ErrUnknownAttribute}
		}
		if a.Type == TypePartyList || a.Type == TypeBinary {
			return &AttributeError{Entity: e.Name, Attribute: o.Attr, Err: fmt.Errorf("%w: cannot order by a %s", ErrInvalidArgument, a.Type)}
		}
	}
	if q.Filter != nil {
		return e.checkExpr(q.Filter)
	}
	return nil
}

func (e *Entity) checkExpr(x Expr) error {
	switch x := x.(type) {
	case *Logical:
		if err := e.checkExpr(x.Left); err != nil {
			return err
		}
		return e.checkExpr(x.Right)
	case *Not:
		return e.checkExpr(x.X)
	case *Func:
		if x.Name == "isparty" {
			if !e.IsActivity {
				return fmt.Errorf("%w: isparty on %s, which is not an activity", ErrInvalidArgument, e.Name)
			}
			return nil
		}
		a := e.Attr(x.Attr)
		if a == nil {
			return &AttributeError{Entity: e.Name, Attribute: x.Attr, Err: ErrUnknownAttribute}
		}
		if a.Type != TypeString && a.Type != TypeMemo {
			return &AttributeError{Entity: e.Name, Attribute: x.Attr, Err: fmt.Errorf("%w: %s needs a string attribute", ErrInvalidArgument, x.Name)}
		}
		return nil
	case *Compare:
		a := e.Attr(x.Attr)
		if a == nil {
			return &AttributeError{Entity: e.Name, Attribute: x.Attr, Err: ErrUnknownAttribute}
		}
		if _, err := LiteralValue(a, x.Value, ID{}, time.Time{}); err != nil {
			return &AttributeError{Entity: e.Name, Attribute: x.Attr, Err: err}
		}
		if x.Value.Kind == KindNull && x.Op != "eq" && x.Op != "ne" {
			return &AttributeError{Entity: e.Name, Attribute: x.Attr, Err: fmt.Errorf("%w: null only with eq or ne", ErrInvalidArgument)}
		}
		switch a.Type {
		case TypePartyList, TypeBinary:
			return &AttributeError{Entity: e.Name, Attribute: x.Attr, Err: fmt.Errorf("%w: cannot filter on a %s", ErrInvalidArgument, a.Type)}
		case TypeBoolean, TypeLookup, TypeOwner, TypeUniqueID:
			if x.Op != "eq" && x.Op != "ne" {
				return &AttributeError{Entity: e.Name, Attribute: x.Attr, Err: fmt.Errorf("%w: only eq and ne on a %s", ErrInvalidArgument, a.Type)}
			}
		}
		return nil
	}
	return fmt.Errorf("%w: bad filter node %T", ErrInvalidArgument, x)
}

// LiteralValue converts a literal to the Go value of attribute a (see
// AttrType), resolving @me to me and @now to now. Null gives nil.
func LiteralValue(a *Attribute, l Literal, me ID, now time.Time) (any, error) {
	bad := func() (any, error) {
		return nil, fmt.Errorf("%w: literal does not fit a %s attribute", ErrInvalidArgument, a.Type)
	}
	if l.Kind == KindNull {
		return nil, nil
	}
	switch a.Type {
	case TypeString, TypeMemo:
		if l.Kind != KindString {
			return bad()
		}
		return l.Str, nil
	case TypeInteger, TypeBigInt, TypePicklist, TypeState, TypeStatus:
		if l.Kind != KindNumber {
			return bad()
		}
		n, err := strconv.ParseInt(l.Str, 10, 64)
		if err != nil {
			return bad()
		}
		return n, nil
	case TypeDecimal, TypeMoney:
		if l.Kind != KindNumber {
			return bad()
		}
		f, err := strconv.ParseFloat(l.Str, 64)
		if err != nil {
			return bad()
		}
		return f, nil
	case TypeBoolean:
		if l.Kind != KindBool {
			return bad()
		}
		return l.Bool, nil
	case TypeDateTime, TypeDateOnly:
		switch l.Kind {
		case KindDateTime:
			return l.Time, nil
		case KindString:
			return ParseTime(a.Type, l.Str)
		case KindNow:
			return now.Add(-l.Offset).UTC(), nil
		}
		return bad()
	case TypeUniqueID, TypeLookup, TypeOwner:
		switch l.Kind {
		case KindGUID:
			return l.ID, nil
		case KindString:
			return ParseID(l.Str)
		case KindMe:
			return me, nil
		}
		return bad()
	}
	return bad()
}
