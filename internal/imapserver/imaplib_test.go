package imapserver

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/pimbridge/pimbridge/internal/realserver"
)

// imaplibScript logs in with Python's imaplib (a real, independent IMAP
// client), lists the mailboxes and tags INBOX message 1 with $CRMTracked.
const imaplibScript = `
import imaplib, sys
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
m.login("alice", sys.argv[2])
typ, boxes = m.list()
assert typ == "OK", boxes
print("\n".join(b.decode() for b in boxes))
typ, _ = m.select("INBOX")
assert typ == "OK"
typ, data = m.uid("STORE", sys.argv[3], "+FLAGS", "($CRMTracked)")
assert typ == "OK", data
m.logout()
`

func TestServer_PythonImaplib(t *testing.T) {
	py := realserver.Require(t, "/usr/bin/python3")
	s := newServer(t, "")
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	uid, _, err := s.Append(ctx, "alice", "INBOX", sample(t, "Quote", "quote@example.org"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, py, "-c", imaplibScript, s.Addr(), pw, strconv.FormatUint(uint64(uid), 10)).CombinedOutput()
	if err != nil {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `\Sent`) || !strings.Contains(string(out), `"Drafts"`) {
		t.Fatalf("imaplib LIST output lacks Sent/Drafts special use:\n%s", out)
	}
	c := login(t, s)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{Flags: true}).Collect()
	if err != nil || len(msgs) != 1 || !hasFlag(msgs[0].Flags, "$CRMTracked") {
		t.Fatalf("flags after imaplib's STORE = %v, %v; want $CRMTracked", msgs, err)
	}
}
