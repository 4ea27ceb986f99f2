package mapping

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/pimbridge/pimbridge/crm"
)

// Email is a message mapped to a CRM email record and its attachments
// (activitymimeattachment records whose objectid is set by the caller once
// the email has an id; it is set here when email.ID is known).
type Email struct {
	Record      crm.Record
	Attachments []crm.Record
	// Defects lists what was repaired or stepped around in the message.
	Defects []Defect
	// Deprecated: Warnings is the String of each of Defects.
	Warnings []string
}

// singleHeaders may appear at most once (RFC 5322 3.6).
var singleHeaders = []string{"From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Subject", "Date", "Message-Id", "In-Reply-To", "References"}

// MessageToCRM maps an RFC 5322 / MIME message to a CRM email. outgoing
// sets directioncode (the bridge knows whether the folder is Sent). Headers
// in any charset are decoded. The message is read the way mail clients read
// it: a broken structure (a first header line that is a continuation, a
// repeated single-instance header, raw 8-bit headers, an undecodable encoded
// word, a missing or odd boundary, a truncated multipart) is repaired and
// listed in Email.Defects. Only a message without a usable header block is a
// *ParseError.
func MessageToCRM(raw []byte, outgoing bool, opts *Options) (*Email, error) {
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:] // mbox separator line
		}
	}
	em := &Email{Record: crm.Record{Entity: crm.EntityEmail, Attrs: map[string]any{}}}
	hdr, body, n := readHeaderBlock(raw, true, &em.Defects)
	if n == 0 {
		return nil, &ParseError{Item: "mail", Line: 1, Err: fmt.Errorf("%w: no header block", ErrMalformed)}
	}
	h := mail.Header{Header: message.Header{Header: hdr}}
	lineOf := func(name string) int { return headerLine(raw, name) }
	a := em.Record.Attrs
	for _, f := range emailFields {
		a[f] = nil
	}
	setStr(a, "subject", strings.ToValidUTF8(decodeWords(h.Get("Subject"), "Subject", lineOf("Subject"), &em.Defects), ""))
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
		em.Defects = append(em.Defects, Defect{Kind: DefectDate, Property: "Date", Line: lineOf("Date"), Field: "senton", Detail: fmt.Sprintf("%q", h.Get("Date"))})
	}
	a["directioncode"] = outgoing
	parties := func(field, header string) []crm.Party {
		list, err := h.AddressList(header)
		if err != nil {
			list = lenientAddresses(h.Get(header))
			if len(list) == 0 {
				em.Defects = append(em.Defects, Defect{Kind: DefectAddress, Property: header, Line: lineOf(header), Field: field, Detail: fmt.Sprintf("%q: %v", h.Get(header), err)})
				return nil
			}
			em.Defects = append(em.Defects, Defect{Kind: DefectAddress, Property: header, Line: lineOf(header), Detail: fmt.Sprintf("%v; the addresses that parse are kept", err)})
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
	w := &mailWalker{opts: opts, em: em}
	w.walk(h.Header, body, 0, "")
	em.Attachments = w.atts
	setStr(a, "description", normNewlines(w.text.String()))
	setStr(a, "descriptionhtml", w.html.String())
	e := entityMeta(crm.EntityEmail)
	for _, f := range []string{"subject", "description", "descriptionhtml", "references", "torecipients"} {
		if s, ok := a[f].(string); ok {
			if max := e.Attr(f).MaxLength; max > 0 && len([]rune(s)) > max {
				a[f] = string([]rune(s)[:max])
				em.Defects = append(em.Defects, Defect{Kind: DefectTruncated, Field: f, Detail: fmt.Sprintf("cut to %d characters", max)})
			}
		}
	}
	for i := range em.Attachments {
		if em.Record.ID != (crm.ID{}) {
			em.Attachments[i].Attrs["objectid"] = crm.Ref{Entity: crm.EntityEmail, ID: em.Record.ID}
		}
	}
	em.Warnings = append(defectStrings(em.Defects), w.notes...)
	return em, nil
}

// lenientAddresses reads the addresses of a list that does not parse as a
// whole, entry by entry.
func lenientAddresses(v string) []*mail.Address {
	var out []*mail.Address
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if ad, err := mail.ParseAddress(s); err == nil {
			out = append(out, ad)
			continue
		}
		if m := angleAddrRE.FindStringSubmatch(s); m != nil {
			name := strings.Trim(strings.TrimSpace(s[:strings.Index(s, "<")]), `"`)
			out = append(out, &mail.Address{Name: name, Address: m[1]})
		} else if m := bareAddrRE.FindString(s); m != "" {
			out = append(out, &mail.Address{Address: m})
		}
	}
	return out
}

var (
	angleAddrRE = regexp.MustCompile(`<([^<>@\s]+@[^<>@\s]+)>`)
	bareAddrRE  = regexp.MustCompile(`[^\s<>,;"@]+@[^\s<>,;"@]+`)
)

func setStr(a map[string]any, f, v string) {
	if v = strings.TrimSpace(v); v != "" {
		a[f] = v
	}
}

func truncRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
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

func newAttachment(name, ct string, body []byte) crm.Record {
	return crm.Record{Entity: crm.EntityAttachment, Attrs: map[string]any{
		"filename": truncRunes(name, 255),
		"mimetype": ct,
		"filesize": int64(len(body)),
	}}
}
