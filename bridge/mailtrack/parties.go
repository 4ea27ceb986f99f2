package mailtrack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"mime"
	netmail "net/mail"
	"strings"
	"time"

	"github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/mapping"
)

// resolveParties points the from/to/cc/bcc parties at the systemuser,
// contact or account with that address; unresolved addresses stay as
// addressused.
func (t *Tracker) resolveParties(ctx context.Context, a map[string]any) error {
	for _, f := range []string{"from", "to", "cc", "bcc"} {
		ps, _ := a[f].([]crm.Party)
		for i := range ps {
			if ps[i].Party != nil || ps[i].Address == "" {
				continue
			}
			ref, err := t.resolve(ctx, ps[i].Address)
			if err != nil {
				return err
			}
			ps[i].Party = ref
		}
	}
	return nil
}

// partyLookups are the queries that resolve an address, in order.
var partyLookups = []struct {
	entity string
	attrs  []string
}{
	{crm.EntitySystemUser, []string{"internalemailaddress"}},
	{crm.EntityContact, []string{"emailaddress1", "emailaddress2", "emailaddress3"}},
	{crm.EntityAccount, []string{"emailaddress1"}},
}

func (t *Tracker) resolve(ctx context.Context, addr string) (*crm.Ref, error) {
	addr = strings.ToLower(strings.TrimSpace(addr))
	if ref, ok := t.parties[addr]; ok {
		return ref, nil
	}
	var found *crm.Ref
	for _, l := range partyLookups {
		conds := make([]string, len(l.attrs))
		for i, at := range l.attrs {
			conds[i] = at + " eq " + odataString(addr)
		}
		rs, err := t.opts.CRM.QueryAll(ctx, l.entity, crmclient.Query{
			Select: l.attrs[:1], Filter: strings.Join(conds, " or "), Top: 1})
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", addr, err)
		}
		if len(rs) > 0 {
			found = &crm.Ref{Entity: l.entity, ID: rs[0].ID}
			break
		}
	}
	t.parties[addr] = found
	return found, nil
}

// bestEffort maps a message that mapping.MessageToCRM refuses (broken
// header structure, undecodable words): whatever the header yields, read
// leniently, and the raw text as the description.
func bestEffort(raw []byte, outgoing bool) *mapping.Email {
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	dec := &mime.WordDecoder{CharsetReader: charset.Reader}
	text := func(k string) string {
		v := h.Get(k)
		if d, err := dec.DecodeHeader(v); err == nil {
			v = d
		}
		return strings.ToValidUTF8(strings.Join(strings.Fields(v), " "), "\uFFFD")
	}
	a := map[string]any{"directioncode": outgoing}
	if s := text("Subject"); s != "" {
		a["subject"] = truncate(s, 400)
	}
	if id := NormalizeMessageID(h.Get("Message-Id")); id != "" {
		a["messageid"] = "<" + id + ">"
	}
	if d, err := netmail.ParseDate(h.Get("Date")); err == nil {
		a["senton"] = d.UTC().Truncate(time.Second)
	}
	for _, f := range []struct{ attr, header string }{{"from", "From"}, {"to", "To"}, {"cc", "Cc"}, {"bcc", "Bcc"}} {
		var ps []crm.Party
		for _, v := range h.Values(f.header) {
			list, err := mail.ParseAddressList(v)
			if err != nil {
				continue
			}
			for _, ad := range list {
				if ad.Address != "" {
					ps = append(ps, crm.Party{Address: ad.Address, Name: ad.Name})
				}
			}
		}
		if len(ps) > 0 {
			a[f.attr] = ps
		}
	}
	if ps, _ := a["from"].([]crm.Party); len(ps) > 0 {
		a["sender"] = ps[0].Address
	}
	if _, body, ok := bytes.Cut(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n\n")); ok {
		if s := strings.TrimSpace(strings.ToValidUTF8(string(body), "\uFFFD")); s != "" {
			a["description"] = truncate(s, 100000)
		}
	}
	return &mapping.Email{Record: crm.Record{Entity: crm.EntityEmail, Attrs: a}}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
