package imapmail

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// XOAuth2 is the SASL mechanism name Gmail and Microsoft 365 use for OAuth 2
// bearer tokens.
const XOAuth2 = "XOAUTH2"

// NewXOAuth2Client returns a SASL client for XOAUTH2: the initial response
// is "user=<user>^Aauth=Bearer <token>^A^A". When the server refuses the
// token it sends a base64 JSON error as a challenge; the client answers it
// with an empty response, as the mechanism requires, so that the server
// ends the exchange with NO.
func NewXOAuth2Client(user, token string) sasl.Client {
	return &xoauth2Client{user: user, token: token}
}

type xoauth2Client struct {
	user, token string
	failed      bool
}

func (c *xoauth2Client) Start() (string, []byte, error) {
	ir := []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01")
	return XOAuth2, ir, nil
}

func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	if c.failed {
		return nil, errors.New("xoauth2: unexpected second challenge")
	}
	c.failed = true
	return []byte{}, nil
}
