package mailtrack

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/emersion/go-message/textproto"
	"github.com/google/uuid"

	"github.com/pimbridge/pimbridge/crm"
)

// namespace is the fixed UUIDv5 namespace of CRM email ids derived from
// message keys. Never change it: bridges converge on the same id only
// while they share it.
var namespace = uuid.MustParse("6f0d5c8e-3b7a-5e51-9a55-7c0f8f2a1d4e")

// NormalizeMessageID returns the canonical form of a Message-ID: without
// angle brackets, comments or white space, the domain part lower-cased;
// "" when id holds nothing.
func NormalizeMessageID(id string) string {
	id = strings.TrimSpace(id)
	if i := strings.IndexByte(id, '<'); i >= 0 {
		if j := strings.IndexByte(id[i:], '>'); j > 0 {
			id = id[i+1 : i+j]
		}
	}
	id = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' || r == '<' || r == '>' {
			return -1
		}
		return r
	}, id)
	if at := strings.LastIndexByte(id, '@'); at >= 0 {
		id = id[:at] + strings.ToLower(id[at:])
	}
	return id
}

// keyHeaders are the header fields that identify a message without a
// Message-ID. They are set by the sender and survive copies, moves and
// re-delivery to another folder.
var keyHeaders = []string{"Date", "From", "Sender", "To", "Cc", "Subject", "In-Reply-To", "References"}

// messageKey is the identity of a message across folders and bridges:
// "mid:" + the normalized Message-ID, or "hdr:" + a SHA-256 of the stable
// header fields when there is no Message-ID.
func messageKey(messageID string, header []byte) string {
	if id := NormalizeMessageID(messageID); id != "" {
		return "mid:" + id
	}
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(header)))
	sum := sha256.New()
	for _, k := range keyHeaders {
		for _, v := range h.Values(k) {
			sum.Write([]byte(strings.ToLower(k)))
			sum.Write([]byte{':'})
			sum.Write([]byte(strings.Join(strings.Fields(v), " ")))
			sum.Write([]byte{'\n'})
		}
	}
	return "hdr:" + hex.EncodeToString(sum.Sum(nil))
}

// EmailID returns the CRM id of the email for a message key, generation
// gen: generation 0 is what every bridge tries first; a later generation
// is used only when an earlier id was deleted in CRM and the message is
// tracked again.
func EmailID(key string, gen int) crm.ID {
	if gen > 0 {
		key += "\x00" + strconv.Itoa(gen)
	}
	return uuid.NewSHA1(namespace, []byte(key))
}

// attachmentID is the id of the n-th attachment of an email.
func attachmentID(email crm.ID, n int) crm.ID {
	return uuid.NewSHA1(email, []byte("activitymimeattachment:"+strconv.Itoa(n)))
}

// odataString quotes s as an OData string literal.
func odataString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
