package imapserver

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/emersion/go-message/mail"
)

// Message describes a plain-text sample e-mail for Append.
type Message struct {
	From      mail.Address
	To, Cc    []mail.Address
	Subject   string
	Date      time.Time // zero: now
	MessageID string    // without angle brackets; empty: none
	InReplyTo string    // Message-ID of the parent, without brackets
	Body      string
}

// Bytes renders the message as RFC 5322 text (CRLF line ends, encoded
// headers, UTF-8 body).
func (m Message) Bytes() ([]byte, error) {
	var h mail.Header
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}
	h.SetDate(date)
	h.SetAddressList("From", []*mail.Address{&m.From})
	h.SetAddressList("To", addrs(m.To))
	if len(m.Cc) > 0 {
		h.SetAddressList("Cc", addrs(m.Cc))
	}
	h.SetSubject(m.Subject)
	if m.MessageID != "" {
		h.SetMessageID(m.MessageID)
	}
	if m.InReplyTo != "" {
		h.SetMsgIDList("In-Reply-To", []string{m.InReplyTo})
		h.SetMsgIDList("References", []string{m.InReplyTo})
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	var buf bytes.Buffer
	w, err := mail.CreateSingleInlineWriter(&buf, h)
	if err != nil {
		return nil, fmt.Errorf("imapserver: render message: %w", err)
	}
	if _, err := io.WriteString(w, m.Body); err != nil {
		return nil, fmt.Errorf("imapserver: render message: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("imapserver: render message: %w", err)
	}
	return buf.Bytes(), nil
}

func addrs(l []mail.Address) []*mail.Address {
	out := make([]*mail.Address, len(l))
	for i := range l {
		out[i] = &l[i]
	}
	return out
}
