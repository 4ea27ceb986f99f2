package mapping

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"

	"github.com/pimbridge/pimbridge/crm"
)

// The e-mail reader follows Python's email.feedparser: it never gives up on
// a message that has a header block; every repair is a Defect.

// hfield is one header field as read: its name, unfolded value and line.
type hfield struct {
	name, value string
	line        int
}

// addressHeaders (and References) are merged when repeated; the other
// singleHeaders keep their first occurrence.
var addressHeaders = []string{"To", "Cc", "Bcc", "References"}

// readHeaderBlock splits raw into a repaired header and the body. lineBase
// is the line number of raw's first line minus one (0 for the message;
// nested parts report lines relative to their own header).
func readHeaderBlock(raw []byte, top bool, ds *[]Defect) (textproto.Header, []byte, int) {
	var fields []*hfield
	pos, num := 0, 0
	var cur *hfield
	var conts []string
	flush := func() {
		if cur != nil {
			cur.value = strings.Join(append([]string{strings.TrimSpace(cur.value)}, conts...), " ")
			cur.value = strings.TrimSpace(cur.value)
			fields = append(fields, cur)
		}
		cur, conts = nil, nil
	}
	body := []byte(nil)
	for pos < len(raw) {
		lineStart := pos
		i := bytes.IndexByte(raw[pos:], '\n')
		next := len(raw)
		if i >= 0 {
			next = pos + i + 1
		}
		l := strings.TrimRight(string(raw[pos:next]), "\r\n")
		num++
		if l == "" {
			body = raw[next:]
			pos = len(raw)
			break
		}
		pos = next
		if l[0] == ' ' || l[0] == '\t' {
			switch {
			case cur == nil:
				*ds = append(*ds, Defect{Kind: DefectFirstLineContinuation, Line: num, Detail: fmt.Sprintf("%q dropped", l)})
			case strings.TrimSpace(l) == "":
				*ds = append(*ds, Defect{Kind: DefectWhitespaceHeaderLine, Property: cur.name, Line: num})
			default:
				conts = append(conts, strings.TrimSpace(l))
			}
			continue
		}
		name, value, ok := strings.Cut(l, ":")
		name = strings.TrimSpace(name)
		if ok && validHeaderName(name) {
			flush()
			cur = &hfield{name: name, value: value, line: num}
			continue
		}
		if cur == nil {
			// No header before it: the body starts here.
			*ds = append(*ds, Defect{Kind: DefectHeaderNoColon, Line: num, Detail: "no header block"})
			body = raw[lineStart:]
			pos = len(raw)
			break
		}
		*ds = append(*ds, Defect{Kind: DefectHeaderNoColon, Property: cur.name, Line: num, Detail: "joined to the header before it"})
		conts = append(conts, strings.TrimSpace(l))
	}
	flush()
	// Charset for raw 8-bit header bytes: the one the message declares.
	fallback := ""
	for _, f := range fields {
		if strings.EqualFold(f.name, "Content-Type") {
			if m := charsetRE.FindStringSubmatch(f.value); m != nil {
				fallback = strings.Trim(m[1], `"`)
			}
		}
	}
	var h textproto.Header
	seen := map[string]*hfield{}
	for _, f := range fields {
		if !utf8.ValidString(f.value) {
			f.value = decode8bit(f.value, fallback)
			*ds = append(*ds, Defect{Kind: DefectHeader8Bit, Property: f.name, Line: f.line, Detail: "read as " + orDefault(fallback, "windows-1252")})
		}
		key := textproto.Header{}
		key.Add(f.name, "")
		canon := key.Fields()
		canon.Next()
		k := canon.Key()
		if top && containsFold(singleHeaders, k) {
			if first, dup := seen[strings.ToLower(k)]; dup {
				d := Defect{Kind: DefectDuplicateHeader, Property: f.name, Line: f.line, Detail: fmt.Sprintf("first on line %d", first.line)}
				if containsFold(addressHeaders, k) {
					d.Detail += "; merged"
					sep := ", "
					if strings.EqualFold(k, "References") {
						sep = " "
					}
					first.value += sep + f.value
					h.Set(first.name, first.value)
				} else {
					d.Detail += fmt.Sprintf("; %q ignored", f.value)
				}
				*ds = append(*ds, d)
				continue
			}
			seen[strings.ToLower(k)] = f
		}
		h.Add(f.name, f.value)
	}
	return h, body, len(fields)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}

var charsetRE = regexp.MustCompile(`(?i)charset\s*=\s*("[^"]*"|[^;\s]+)`)

// decode8bit reads header bytes that are not UTF-8 in cs, else
// Windows-1252 (which maps every byte).
func decode8bit(s, cs string) string {
	if cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
		if r, err := charset.Reader(cs, strings.NewReader(s)); err == nil {
			if b, err := io.ReadAll(r); err == nil && utf8.Valid(b) {
				return string(b)
			}
		}
	}
	b, _ := charmap.Windows1252.NewDecoder().String(s)
	return b
}

// decodeWords decodes the RFC 2047 encoded words of a header value; a word
// that cannot be decoded stays as written and is a defect.
func decodeWords(v, header string, line int, ds *[]Defect) string {
	dec := &mime.WordDecoder{CharsetReader: charset.Reader}
	if s, err := dec.DecodeHeader(v); err == nil && checkWords(dec, v) == nil {
		return s
	}
	out := encodedWordRE.ReplaceAllStringFunc(v, func(w string) string {
		s, err := dec.Decode(w)
		if err != nil {
			*ds = append(*ds, Defect{Kind: DefectEncodedWord, Property: header, Line: line, Detail: fmt.Sprintf("%q kept as written: %v", w, err)})
			return w
		}
		return s
	})
	// Adjacent decoded words are not separated by the white space between
	// them (RFC 2047 6.2); good enough for a repaired header.
	return out
}

// mailWalker collects the texts and attachments of a MIME tree.
type mailWalker struct {
	opts       *Options
	em         *Email
	text, html strings.Builder
	atts       []crm.Record
	notes      []string // not defects: the size cap
}

var boundaryRE = regexp.MustCompile(`(?i)boundary\s*=\s*("[^"]*"|[^;\s]+)`)

var encodedWordRE = regexp.MustCompile(`=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=`)

// checkWords reports an encoded word that cannot be decoded (unknown
// charset, bad base64).
func checkWords(dec *mime.WordDecoder, s string) error {
	for _, w := range encodedWordRE.FindAllString(s, -1) {
		if _, err := dec.Decode(w); err != nil {
			return fmt.Errorf("encoded word %q: %w", w, err)
		}
	}
	return nil
}

// contentType reads the media type and parameters of h leniently.
func (w *mailWalker) contentType(h message.Header, where string) (string, map[string]string) {
	v := h.Get("Content-Type")
	ct, params, err := h.ContentType()
	if err == nil && ct != "" {
		return strings.ToLower(ct), params
	}
	if strings.TrimSpace(v) == "" {
		return "text/plain", map[string]string{}
	}
	mt, _, _ := strings.Cut(v, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if !strings.Contains(mt, "/") {
		mt = "text/plain"
	}
	params = map[string]string{}
	if m := boundaryRE.FindStringSubmatch(v); m != nil {
		params["boundary"] = strings.Trim(m[1], `"`)
		if regexp.MustCompile(`(?i)boundary\s+=|=\s+`).MatchString(v) {
			w.defect(Defect{Kind: DefectBoundarySpacing, Property: "Content-Type", Detail: where + fmt.Sprintf("%q", v)})
		} else if !strings.HasPrefix(m[1], `"`) {
			w.defect(Defect{Kind: DefectContentType, Property: "Content-Type", Detail: where + "unquoted boundary with special characters"})
		}
	} else {
		w.defect(Defect{Kind: DefectContentType, Property: "Content-Type", Detail: fmt.Sprintf("%s%q: %v", where, v, err)})
	}
	if m := charsetRE.FindStringSubmatch(v); m != nil {
		params["charset"] = strings.Trim(m[1], `"`)
	}
	return mt, params
}

func (w *mailWalker) defect(d Defect) { w.em.Defects = append(w.em.Defects, d) }

// walk maps one entity: h its header, body its raw (still encoded) body.
func (w *mailWalker) walk(h message.Header, body []byte, depth int, where string) {
	if depth > 20 {
		w.defect(Defect{Kind: DefectTooDeep, Detail: where})
		return
	}
	ct, params := w.contentType(h, where)
	if strings.HasPrefix(ct, "multipart/") {
		b := params["boundary"]
		if b == "" {
			w.defect(Defect{Kind: DefectNoBoundary, Property: "Content-Type", Detail: where + "body read as text"})
			w.leaf(h, "text/plain", params, body, where)
			return
		}
		parts, ok := w.splitMultipart(body, b, where)
		if !ok {
			w.defect(Defect{Kind: DefectStartBoundary, Property: "Content-Type", Detail: where + fmt.Sprintf("boundary %q never occurs; body read as text", b)})
			w.leaf(h, "text/plain", params, body, where)
			return
		}
		for i, p := range parts {
			ph, pbody, _ := readHeaderBlock(p, false, &w.em.Defects)
			w.walk(message.Header{Header: ph}, pbody, depth+1, fmt.Sprintf("%spart %d: ", where, i+1))
		}
		return
	}
	w.leaf(h, ct, params, body, where)
}

// splitMultipart returns the parts between boundary lines; ok is false
// when the boundary never occurs.
func (w *mailWalker) splitMultipart(body []byte, boundary, where string) ([][]byte, bool) {
	delim := "--" + boundary
	var parts [][]byte
	start := -1 // start of the current part, -1 in the preamble
	pos := 0
	spacing := false
	for pos < len(body) {
		i := bytes.IndexByte(body[pos:], '\n')
		next := len(body)
		if i >= 0 {
			next = pos + i + 1
		}
		l := strings.TrimRight(string(body[pos:next]), "\r\n")
		if strings.HasPrefix(l, delim) {
			rest := l[len(delim):]
			closing := strings.HasPrefix(rest, "--")
			if closing {
				rest = rest[2:]
			}
			if strings.TrimSpace(rest) == "" {
				if rest != "" {
					spacing = true
				}
				if start >= 0 {
					parts = append(parts, trimEOL(body[start:pos]))
				}
				if closing {
					if spacing {
						w.defect(Defect{Kind: DefectBoundarySpacing, Detail: where + "white space after a boundary line"})
					}
					return parts, true
				}
				start = next
			}
		}
		pos = next
	}
	if start < 0 {
		return nil, false
	}
	parts = append(parts, body[start:])
	if spacing {
		w.defect(Defect{Kind: DefectBoundarySpacing, Detail: where + "white space after a boundary line"})
	}
	w.defect(Defect{Kind: DefectCloseBoundary, Detail: fmt.Sprintf("%sboundary %q not closed; the last part runs to the end", where, boundary)})
	return parts, true
}

// trimEOL removes the line end that belongs to the next boundary line.
func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// encodingAliases maps misspelt transfer encodings, without spaces, "-"
// and "_", to their names.
var encodingAliases = map[string]string{
	"7bit": "7bit", "7bits": "7bit", "8bit": "8bit", "8bits": "8bit", "binary": "binary",
	"base64": "base64", "quotedprintable": "quoted-printable", "qp": "quoted-printable",
}

// decodeTransfer undoes the Content-Transfer-Encoding leniently.
func (w *mailWalker) decodeTransfer(h message.Header, body []byte, where string) []byte {
	enc := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	if e, _, ok := strings.Cut(enc, ";"); ok || strings.ContainsAny(enc, " \t") && encodingAliases[strings.ReplaceAll(enc, " ", "")] == "" {
		// "quoted-printable;" (Outlook 2003), "base64 (x)".
		first := ""
		if fs := strings.Fields(e); len(fs) > 0 {
			first = fs[0]
		}
		w.defect(Defect{Kind: DefectTransferEncoding, Property: "Content-Transfer-Encoding", Detail: fmt.Sprintf("%s%q read as %q", where, enc, first)})
		enc = first
	}
	if alias, ok := encodingAliases[strings.NewReplacer(" ", "", "-", "", "_", "").Replace(enc)]; ok && alias != enc {
		w.defect(Defect{Kind: DefectTransferEncoding, Property: "Content-Transfer-Encoding", Detail: fmt.Sprintf("%s%q read as %q", where, enc, alias)})
		enc = alias
	}
	switch enc {
	case "", "7bit", "8bit", "binary":
		return body
	case "base64":
		clean := make([]byte, 0, len(body))
		bad := false
		for _, c := range body {
			switch {
			case c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/':
				clean = append(clean, c)
			case c == '=' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
			default:
				bad = true
			}
		}
		if len(clean)%4 == 1 {
			clean, bad = clean[:len(clean)-1], true
		}
		out, err := base64.RawStdEncoding.DecodeString(string(clean))
		if err != nil {
			bad = true
		}
		strict := strings.Join(strings.Fields(string(body)), "")
		if _, err := base64.StdEncoding.DecodeString(strict); err != nil {
			bad = true
		}
		if bad {
			w.defect(Defect{Kind: DefectTransferEncoding, Property: "Content-Transfer-Encoding", Detail: where + "broken base64; what decodes is kept"})
		}
		return out
	case "quoted-printable":
		r := message.Header{}
		r.Set("Content-Transfer-Encoding", "quoted-printable")
		e, err := message.New(r, bytes.NewReader(body))
		if err == nil {
			if out, err := io.ReadAll(e.Body); err == nil {
				return out
			}
		}
		w.defect(Defect{Kind: DefectTransferEncoding, Property: "Content-Transfer-Encoding", Detail: where + "broken quoted-printable; kept as written"})
		return body
	}
	w.defect(Defect{Kind: DefectTransferEncoding, Property: "Content-Transfer-Encoding", Detail: fmt.Sprintf("%sunknown encoding %q; body taken as is", where, enc)})
	return body
}

// leaf maps a non-multipart entity: the first text/plain and text/html
// bodies, the rest as attachments.
func (w *mailWalker) leaf(h message.Header, ct string, params map[string]string, raw []byte, where string) {
	body := w.decodeTransfer(h, raw, where)
	if cs := strings.ToLower(params["charset"]); strings.HasPrefix(ct, "text/") && cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if r, err := charset.Reader(cs, bytes.NewReader(body)); err == nil {
			if b, err := io.ReadAll(r); err == nil {
				body = b
			}
		} else {
			w.defect(Defect{Kind: DefectUnknownCharset, Property: "Content-Type", Detail: fmt.Sprintf("%s%q", where, cs)})
			if !utf8.Valid(body) {
				body, _ = charmap.Windows1252.NewDecoder().Bytes(body)
			}
		}
	}
	disp, dparams, _ := h.ContentDisposition()
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if name != "" {
		if d, err := (&mime.WordDecoder{CharsetReader: charset.Reader}).DecodeHeader(name); err == nil {
			name = d
		}
	}
	if (ct == "text/plain" || ct == "text/html") && !strings.EqualFold(disp, "attachment") && name == "" {
		s := toValidUTF8(string(body))
		switch {
		case ct == "text/plain" && w.text.Len() == 0:
			w.text.WriteString(s)
		case ct == "text/html" && w.html.Len() == 0:
			w.html.WriteString(s)
		}
		return
	}
	if name == "" {
		name = "attachment"
		if exts, _ := mime.ExtensionsByType(ct); len(exts) > 0 {
			name += exts[0]
		}
	}
	att := newAttachment(name, ct, body)
	if max := w.opts.maxAttachment(); max >= 0 && int64(len(body)) <= max {
		att.Attrs["body"] = body
	} else {
		w.notes = append(w.notes, fmt.Sprintf("attachment %q (%d bytes) over the size cap: body not carried", name, len(body)))
	}
	w.atts = append(w.atts, att)
}
