package imapserver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"
	"github.com/pimbridge/pimbridge/internal/imapserver"
)

// The demo starts the server, adds its user and files sample mail.
func Example() {
	ctx := context.Background()
	srv, err := imapserver.New(ctx, imapserver.Options{
		Dir:    "", // a folder here keeps the mailboxes between runs
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	if err := srv.AddUser(ctx, "alice", "secret"); err != nil {
		panic(err)
	}
	msg, err := imapserver.Message{
		From:      mail.Address{Name: "Ada Lovelace", Address: "ada@example.org"},
		To:        []mail.Address{{Address: "alice@example.org"}},
		Subject:   "Quote for 20 licences",
		Date:      time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC),
		MessageID: "quote-1@example.org",
		Body:      "Please send the quote.\r\n",
	}.Bytes()
	if err != nil {
		panic(err)
	}
	uid, _, err := srv.Append(ctx, "alice", "INBOX", msg, []imap.Flag{imap.FlagSeen}, time.Time{})
	fmt.Println(uid, err)
	// Output: 1 <nil>
}
