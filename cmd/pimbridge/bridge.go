package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pimbridge/pimbridge/bridge"
	"github.com/pimbridge/pimbridge/bridge/mailtrack"
	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/crm"
	"github.com/pimbridge/pimbridge/crm/crmclient"
	"github.com/pimbridge/pimbridge/idmap"
	"github.com/pimbridge/pimbridge/internal/trace"
	"github.com/pimbridge/pimbridge/pim/davcalendar"
	"github.com/pimbridge/pimbridge/pim/davcontacts"
	"github.com/pimbridge/pimbridge/pim/davext"
)

// bridgeEnv is a bridge wired from the configuration, with its cache.
type bridgeEnv struct {
	cfg    *config.Config
	cache  *idmap.Store
	bridge *bridge.Bridge
	crm    *crmclient.Client
	log    *slog.Logger
	// endpoint is the CRM server, or the local API while offline.
	endpoint *crmEndpoint
	// tracker tracks e-mail over IMAP; nil when IMAP is not configured
	// (see openTracker, which withMail calls).
	tracker   *mailtrack.Tracker
	closeMail func() error
	// logState is the process's level (the control socket sets it).
	logState *logState
	// imapTrace receives the IMAP connections' raw stream (the trace).
	imapTrace io.Writer
	// refresh, when set, refreshes the offline replica and returns the
	// queue length; the daemon runs it every offline.refresh.
	refresh func(context.Context) (int64, error)
	// page, when set, is the daemon's web page; runDaemon hands it the
	// control of each wiring.
	page *uiBackend
}

func (e *bridgeEnv) Close() error {
	var errs []error
	if e.closeMail != nil {
		errs = append(errs, e.closeMail())
	}
	if e.cache != nil {
		errs = append(errs, e.cache.Close())
	}
	if e.endpoint != nil {
		errs = append(errs, e.endpoint.stop())
	}
	return errors.Join(errs...)
}

// withMail adds e-mail tracking when [imap] is configured.
func (e *bridgeEnv) withMail(ctx context.Context) error {
	t, closeMail, err := openTracker(ctx, e.cfg, e.crm, e.cache, e.log, e.imapTrace)
	if err != nil {
		return err
	}
	e.tracker, e.closeMail = t, closeMail
	return nil
}

// cachePath is the client cache file of a configuration.
func cachePath(cfg *config.Config) string { return filepath.Join(cfg.Client.StateDir, "cache.db") }

// openBridge loads the configuration and wires a bridge. cacheFile, when
// set, replaces the cache in the state dir (a dry run's copy).
func (g *globals) openBridge(ctx context.Context, cacheFile string, progress func(bridge.CollectionProgress)) (_ *bridgeEnv, err error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	log := g.logger()
	if cfg.CRM.URL == "" {
		return nil, fmt.Errorf("config: [crm] url is not set")
	}
	pw, err := readSecret("crm", cfg.CRM.SecretRef)
	if err != nil {
		return nil, err
	}
	if cacheFile == "" {
		if err := os.MkdirAll(cfg.Client.StateDir, 0o700); err != nil {
			return nil, err
		}
		cacheFile = cachePath(cfg)
	}
	ep, err := openCRMEndpoint(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	env := &bridgeEnv{cfg: cfg, endpoint: ep, log: log, logState: g.log, imapTrace: trace.NewIMAPWriter(g.traceOptions("imap", log))}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()
	if env.crm, err = crmclient.New(ep.url, &crmclient.Options{User: cfg.CRM.User, Password: pw, HTTPClient: g.httpClient("crm", log)}); err != nil {
		return nil, err
	}
	if env.cache, err = idmap.OpenOptions(ctx, cacheFile, &idmap.Options{Logger: log}); err != nil {
		return nil, err
	}
	client := env.crm
	opts := bridge.Options{
		CRM:                client,
		Fenced:             func(gen int64) bridge.CRM { return client.WithGeneration(gen) },
		ClientID:           cfg.Client.ID,
		Cache:              env.cache,
		Settings:           settingsOf(cfg),
		Logger:             log,
		CollectionProgress: progress,
	}
	if cfg.CardDAV.URL != "" && cfg.CardDAV.AddressBook != "" {
		c, err := g.davClient(cfg.CardDAV.URL, cfg.CardDAV.User, "carddav", cfg.CardDAV.SecretRef, log)
		if err != nil {
			return nil, err
		}
		opts.Contacts = davcontacts.New(c, cfg.CardDAV.AddressBook)
	}
	if err := g.withDirectory(cfg, &opts, log); err != nil {
		return nil, err
	}
	if cfg.CalDAV.URL != "" && (cfg.CalDAV.Calendar != "" || cfg.CalDAV.Tasks != "") {
		c, err := g.davClient(cfg.CalDAV.URL, cfg.CalDAV.User, "caldav", cfg.CalDAV.SecretRef, log)
		if err != nil {
			return nil, err
		}
		if cfg.CalDAV.Calendar != "" {
			opts.Calendar = davcalendar.New(c, cfg.CalDAV.Calendar)
		}
		tasks := cfg.CalDAV.Tasks
		if tasks == "" {
			// caldav.tasks unset: the calendar, if it takes VTODO.
			comps, err := c.CalendarComponents(ctx, cfg.CalDAV.Calendar)
			if err != nil {
				return nil, fmt.Errorf("caldav.calendar %s: %w", cfg.CalDAV.Calendar, err)
			}
			if davext.TakesComponent(comps, "VTODO") {
				tasks = cfg.CalDAV.Calendar
			}
		}
		if tasks != "" {
			opts.Tasks = davcalendar.New(c, tasks)
		}
	}
	if env.bridge, err = bridge.New(opts); err != nil {
		return nil, err
	}
	return env, nil
}

func (g *globals) davClient(url, user, name string, ref config.SecretRef, log *slog.Logger) (*davext.Client, error) {
	var pw string
	if ref.IsSet() {
		var err error
		if pw, err = readSecret(name, ref); err != nil {
			return nil, err
		}
	}
	return davext.New(url, &davext.Options{Username: user, Password: pw, Logger: log, HTTPClient: g.httpClient(name, log)})
}

// settingsOf maps the [sync] table to the bridge's settings.
func settingsOf(cfg *config.Config) bridge.Settings {
	s := cfg.Sync
	return bridge.Settings{
		ToPIM: map[string]bool{
			crm.EntityContact: s.Contacts, crm.EntityTask: s.Tasks, crm.EntityPhoneCall: s.PhoneCalls,
			crm.EntityLetter: s.Letters, crm.EntityFax: s.Faxes, crm.EntityAppointment: s.Appointments,
		},
		UpdateCompany:       s.UpdateCompanyField,
		UntrackDeletesInCRM: s.UntrackDeletesInCRM,
		TrackByCategory:     s.TrackBy == "category",
		Category:            s.Category,
		MassDeleteThreshold: s.MassDeleteThreshold,
		VerifyPerCycle:      s.VerificationPerCycle,
		AllowDuplicates:     s.Duplicates == "allow",
	}
}
