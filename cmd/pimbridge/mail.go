package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/pimbridge/pimbridge/bridge/mailtrack"
	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/pim/imapmail"
)

// openTracker wires e-mail tracking from the [imap] table over the bridge's
// cache (the tracker owns the e-mail mappings in it). It returns nil when no
// IMAP server is configured or sync.email is off. The returned close func
// logs out.
func openTracker(ctx context.Context, cfg *config.Config, client *crmclient.Client, cache *idmap.Store, log *slog.Logger, debug io.Writer) (*mailtrack.Tracker, func() error, error) {
	if cfg.IMAP.Addr == "" || !cfg.Sync.Email {
		return nil, nil, nil
	}
	pw, err := readSecret("imap", cfg.IMAP.SecretRef)
	if err != nil {
		return nil, nil, err
	}
	sec := map[string]imapmail.Security{"none": imapmail.SecurityNone, "starttls": imapmail.SecurityStartTLS, "tls": imapmail.SecurityTLS}[cfg.IMAP.Security]
	mb, err := imapmail.Dial(ctx, imapmail.Options{Addr: cfg.IMAP.Addr, Security: sec, User: cfg.IMAP.User, Password: pw, Logger: log, DebugWriter: debug})
	if err != nil {
		return nil, nil, fmt.Errorf("imap %s: %w", cfg.IMAP.Addr, err)
	}
	t, err := mailtrack.New(mailtrack.Options{
		CRM: client, Mailbox: mb, Cache: cache, Account: cfg.IMAP.User + "@" + cfg.IMAP.Addr,
		Folders: cfg.IMAP.Folders, TrackKeyword: cfg.IMAP.TrackKeyword, RegardingFolder: cfg.IMAP.RegardingFolder,
		TrackReplies: cfg.IMAP.TrackReplies, UntrackDeletesInCRM: cfg.Sync.UntrackDeletesInCRM,
		AttachmentSizeLimit: cfg.Sync.AttachmentSizeLimit, Logger: log,
	})
	if err != nil {
		mb.Close()
		return nil, nil, err
	}
	return t, mb.Close, nil
}
