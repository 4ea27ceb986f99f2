package mapping

import (
	"os"
	"strings"
	"testing"

	"github.com/pimbridge/pimbridge/crm"
)

func TestMessageToCRM_attachmentsAndParties(t *testing.T) {
	raw, err := os.ReadFile("testdata/fixtures/mail/apple-mail-2.935-rfc2231-and-encoded-word-filename-latin1.eml")
	if err != nil {
		t.Fatal(err)
	}
	jeff := crm.Ref{Entity: "contact", ID: crm.NewID()}
	opts := &Options{ResolveParty: func(addr string) *crm.Ref {
		if strings.EqualFold(addr, "jeff@37signals.com") {
			return &jeff
		}
		return nil
	}}
	em, err := MessageToCRM(raw, true, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := em.Record.Attrs["subject"]; got != "Eelanalüüsi päring" {
		t.Errorf("subject = %q", got)
	}
	if em.Record.Attrs["directioncode"] != true {
		t.Error("directioncode not outgoing")
	}
	from := em.Record.Attrs["from"].([]crm.Party)
	if from[0].Party == nil || from[0].Party.ID != jeff.ID {
		t.Errorf("from not resolved: %+v", from)
	}
	if len(em.Attachments) != 1 {
		t.Fatalf("%d attachments", len(em.Attachments))
	}
	a := em.Attachments[0].Attrs
	if a["filename"] != "Eelanalüüsi päring.jpg" || a["mimetype"] != "image/jpeg" || a["filesize"] != int64(len(a["body"].([]byte))) {
		t.Errorf("attachment = %v %v %v", a["filename"], a["mimetype"], a["filesize"])
	}
	// Size cap: the body is left out, the size stays.
	em, err = MessageToCRM(raw, false, &Options{MaxAttachmentSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := em.Attachments[0].Attrs["body"]; ok || em.Attachments[0].Attrs["filesize"].(int64) <= 100 {
		t.Errorf("size cap not applied: %v", em.Attachments[0].Attrs)
	}
	e := entityMeta("email")
	for k, v := range em.Record.Attrs {
		if err := e.CheckValue(e.Attr(k), v); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}

func TestMessageToCRM_charsets(t *testing.T) {
	tests := []struct{ file, field, want string }{
		{"docomo-mobile-shift-jis-8bit.eml", "description", "あいうえお"},
		{"korean-ks_c_5601-1987-charset-8bit.eml", "description", "스티해"},
		{"ms-exchange-online-tnef-winmail-dat-koi8r.eml", "description", "шостий"},
		{"rfc6532-raw-utf8-headers-no-message-id.eml", "subject", "Säying Hello"},
		{"evolution-2.30-lkml-long-references-12.eml", "inreplyto", "<20101116122102.86e7e0b9.rdunlap@xenotime.net>"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile("testdata/fixtures/mail/" + tc.file)
			if err != nil {
				t.Fatal(err)
			}
			em, err := MessageToCRM(raw, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := em.Record.Attrs[tc.field].(string); !strings.HasPrefix(got, tc.want) {
				t.Errorf("%s = %q, want prefix %q", tc.field, got, tc.want)
			}
		})
	}
}
