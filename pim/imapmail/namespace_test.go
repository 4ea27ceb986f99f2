package imapmail

import "testing"

// TestNamespace_PathTurnsSlashPathsIntoServerNames: a configured path
// written with "/" becomes the server's delimiter and personal prefix.
func TestNamespace_PathTurnsSlashPathsIntoServerNames(t *testing.T) {
	cyrus := Namespace{Prefix: "INBOX.", Delim: ".", Others: []string{"user."}}
	courier := Namespace{Prefix: "INBOX.", Delim: "."}
	dovecot := Namespace{Delim: "/"}
	fastmail := Namespace{Delim: "."}
	for _, c := range []struct {
		ns       Namespace
		in, want string
	}{
		{cyrus, "CRM/Regarding", "INBOX.CRM.Regarding"},
		{cyrus, "INBOX", "INBOX"},
		{cyrus, "inbox", "INBOX"},
		{cyrus, "INBOX/Sent", "INBOX.Sent"},
		{cyrus, "INBOX.Sent", "INBOX.Sent"},
		{cyrus, "user/bob/CRM", "user.bob.CRM"},
		{courier, "Archive/2024", "INBOX.Archive.2024"},
		{dovecot, "CRM/Regarding", "CRM/Regarding"},
		{fastmail, "CRM/Regarding", "CRM.Regarding"},
		{Namespace{}, "CRM/Regarding", "CRM/Regarding"},
	} {
		if got := c.ns.Path(c.in); got != c.want {
			t.Errorf("%+v.Path(%q) = %q, want %q", c.ns, c.in, got, c.want)
		}
	}
}
