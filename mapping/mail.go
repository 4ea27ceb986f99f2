package mapping

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"

	"github.com/pimbridge/pimbridge/crm"
)

// Email is a message mapped to a CRM email record and its attachments
// (activitymimeattachment records whose objectid is set by the caller once
// the email has an id; it is set here when email.ID is known).
type Email struct {
	Record      crm.Record
	Attachments []crm.Record
	Warnings    []string
}

// singleHeaders may appear at most once (RFC 5322 3.6).
var singleHeaders = []string{"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Subject", "Date", "Message-Id", "In-Reply-To", "References"}

// MessageToCRM maps an RFC 5322 / MIME message to a CRM email. outgoing
// sets directioncode (the bridge knows whether the folder is Sent). Headers
// in any charset are decoded; a broken header structure (a repeated
// single-instance header, a whitespace-only continuation line, an
// undecodable encoded word) is a *ParseError naming the header and line.
func MessageToCRM(raw []byte, outgoing bool, opts *Options) (*Email, error) {
	if err := checkHeader(raw); err != nil {
		return nil, err
	}
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:] // mbox separator line
		}
	}
	raw = fixHeader(raw)
	m, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return nil, &ParseError{Item: "mail", Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	h := mail.Header{Header: m.Header}
	em := &Email{Record: crm.Record{Entity: crm.EntityEmail, Attrs: map[string]any{}}}
	a := em.Record.Attrs
	for _, f := range emailFields {
		a[f] = nil
	}
	dec := &mime.WordDecoder{CharsetReader: charset.Reader}
	subj, err := dec.DecodeHeader(h.Get("Subject"))
	if err == nil {
		err = checkWords(dec, h.Get("Subject"))
	}
	if err != nil {
		return nil, &ParseError{Item: "mail", Property: "Subject", Line: headerLine(raw, "Subject"), Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
	}
	setStr(a, "subject", strings.ToValidUTF8(subj, ""))
	if v := h.Get("Message-Id"); v != "" {
		if id, err := h.MessageID(); err == nil && id != "" {
			a["messageid"] = "<" + id + ">"
		} else {
			setStr(a, "messageid", strings.TrimSpace(v))
		}
	}
	if ids, err := h.MsgIDList("In-Reply-To"); err == nil && len(ids) > 0 {
		a["inreplyto"] = "<" + ids[0] + ">"
	}
	if ids, err := h.MsgIDList("References"); err == nil && len(ids) > 0 {
		refs := make([]string, len(ids))
		for i, id := range ids {
			refs[i] = "<" + id + ">"
		}
		a["references"] = strings.Join(refs, " ")
	}
	if t, err := h.Date(); err == nil && !t.IsZero() {
		a["senton"] = t.UTC().Truncate(time.Second)
	} else if h.Get("Date") != "" {
		em.Warnings = append(em.Warnings, fmt.Sprintf("Date: cannot parse %q", h.Get("Date")))
	}
	a["directioncode"] = outgoing
	parties := func(field, header string) []crm.Party {
		list, err := h.AddressList(header)
		if err != nil {
			em.Warnings = append(em.Warnings, fmt.Sprintf("%s: %v", header, err))
			return nil
		}
		var ps []crm.Party
		for _, ad := range list {
			if ad.Address != "" {
				ps = append(ps, opts.party(ad.Address, ad.Name))
			}
		}
		if len(ps) > 0 {
			a[field] = ps
		}
		return ps
	}
	if from := parties("from", "From"); len(from) > 0 {
		a["sender"] = from[0].Address
	}
	if to := parties("to", "To"); len(to) > 0 {
		addrs := make([]string, len(to))
		for i, p := range to {
			addrs[i] = p.Address
		}
		a["torecipients"] = strings.Join(addrs, ";")
	}
	parties("cc", "Cc")
	parties("bcc", "Bcc")
	var text, html strings.Builder
	walkParts(m, opts, em, &text, &html, 0)
	setStr(a, "description", normNewlines(text.String()))
	setStr(a, "descriptionhtml", html.String())
	e := entityMeta(crm.EntityEmail)
	for _, f := range []string{"subject", "description", "descriptionhtml", "references", "torecipients"} {
		if s, ok := a[f].(string); ok {
			if max := e.Attr(f).MaxLength; max > 0 && len([]rune(s)) > max {
				a[f] = string([]rune(s)[:max])
				em.Warnings = append(em.Warnings, fmt.Sprintf("%s truncated to %d characters", f, max))
			}
		}
	}
	for i := range em.Attachments {
		if em.Record.ID != (crm.ID{}) {
			em.Attachments[i].Attrs["objectid"] = crm.Ref{Entity: crm.EntityEmail, ID: em.Record.ID}
		}
	}
	return em, nil
}

func setStr(a map[string]any, f, v string) {
	if v = strings.TrimSpace(v); v != "" {
		a[f] = v
	}
}

// walkParts collects the first text/plain and text/html bodies and the
// attachments.
func walkParts(e *message.Entity, opts *Options, em *Email, text, html *strings.Builder, depth int) {
	if depth > 20 {
		return
	}
	if v := e.Header.Get("Content-Type"); e.MultipartReader() == nil && strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), "multipart/") {
		// Unquoted boundary with special characters (Outlook Express).
		if m := boundaryRE.FindStringSubmatch(v); m != nil {
			mt, _, _ := strings.Cut(v, ";")
			h := e.Header.Copy()
			h.Set("Content-Type", strings.TrimSpace(mt)+`; boundary="`+strings.Trim(m[1], `"`)+`"`)
			if fixed, err := message.New(h, e.Body); err == nil {
				e = fixed
			}
		}
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
					em.Warnings = append(em.Warnings, fmt.Sprintf("multipart: %v", err))
					return
				}
			}
			if p == nil {
				return
			}
			walkParts(p, opts, em, text, html, depth+1)
		}
	}
	ct, params, err := e.Header.ContentType()
	if err != nil || ct == "" {
		ct = "text/plain"
	}
	disp, dparams, _ := e.Header.ContentDisposition()
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	if name != "" {
		if d, err := (&mime.WordDecoder{CharsetReader: charset.Reader}).DecodeHeader(name); err == nil {
			name = d
		}
	}
	isText := (ct == "text/plain" || ct == "text/html") && disp != "attachment" && name == ""
	body, err := io.ReadAll(e.Body)
	if err != nil {
		em.Warnings = append(em.Warnings, fmt.Sprintf("%s part: %v", ct, err))
	}
	if isText {
		s := toValidUTF8(string(body))
		switch {
		case ct == "text/plain" && text.Len() == 0:
			text.WriteString(s)
		case ct == "text/html" && html.Len() == 0:
			html.WriteString(s)
		}
		return
	}
	if strings.HasPrefix(ct, "multipart/") {
		return
	}
	if name == "" {
		name = "attachment"
		if exts, _ := mime.ExtensionsByType(ct); len(exts) > 0 {
			name += exts[0]
		}
	}
	att := crm.Record{Entity: crm.EntityAttachment, Attrs: map[string]any{
		"filename": truncRunes(name, 255),
		"mimetype": ct,
		"filesize": int64(len(body)),
	}}
	if max := opts.maxAttachment(); max >= 0 && int64(len(body)) <= max {
		att.Attrs["body"] = body
	} else {
		em.Warnings = append(em.Warnings, fmt.Sprintf("attachment %q (%d bytes) over the size cap: body not carried", name, len(body)))
	}
	em.Attachments = append(em.Attachments, att)
}

func truncRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// checkHeader scans the header block for structural breakage.
func checkHeader(raw []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	seen := map[string]int{}
	num, cur := 0, ""
	for sc.Scan() {
		num++
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" {
			break
		}
		if num == 1 && strings.HasPrefix(l, "From ") {
			continue // mbox separator
		}
		if l[0] == ' ' || l[0] == '\t' {
			if strings.TrimSpace(l) == "" {
				return &ParseError{Item: "mail", Property: cur, Line: num, Err: fmt.Errorf("%w: whitespace-only continuation line", ErrMalformed)}
			}
			continue
		}
		name, _, ok := strings.Cut(l, ":")
		if !ok {
			continue // an unindented continuation (Exchange); fixHeader joins it
		}
		cur = strings.TrimSpace(name)
		for _, s := range singleHeaders {
			if strings.EqualFold(cur, s) {
				if first, dup := seen[s]; dup {
					return &ParseError{Item: "mail", Property: cur, Line: num, Err: fmt.Errorf("%w: header repeated (first on line %d)", ErrMalformed, first)}
				}
				seen[s] = num
			}
		}
	}
	if err := sc.Err(); err != nil {
		return &ParseError{Item: "mail", Err: fmt.Errorf("%w: %v", ErrMalformed, errors.Unwrap(err))}
	}
	return nil
}

func headerLine(raw []byte, name string) int {
	for i, l := range strings.Split(string(raw), "\n") {
		if k, _, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return i + 1
		}
		if strings.TrimSpace(l) == "" {
			break
		}
	}
	return 0
}

var boundaryRE = regexp.MustCompile(`(?i)boundary=("[^"]*"|[^;\s]+)`)

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

// fixHeader turns unindented header continuation lines (a line without a
// colon inside the header block) into indented ones.
func fixHeader(raw []byte) []byte {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if e2 := bytes.Index(raw, []byte("\n\n")); end < 0 || e2 >= 0 && e2 < end {
		end = e2
	}
	if end < 0 {
		end = len(raw)
	}
	lines := bytes.SplitAfter(raw[:end], []byte("\n"))
	changed := false
	for i, l := range lines {
		if i > 0 && len(l) > 0 && l[0] != ' ' && l[0] != '\t' && !bytes.Contains(l, []byte(":")) && len(bytes.TrimSpace(l)) > 0 {
			lines[i] = append([]byte(" "), l...)
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return append(bytes.Join(lines, nil), raw[end:]...)
}
