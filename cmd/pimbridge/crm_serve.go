package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/pimbridge/pimbridge/config"
	"github.com/pimbridge/pimbridge/crm/crmserver"
	"github.com/pimbridge/pimbridge/crm/crmstore"
	"github.com/spf13/cobra"
)

type crmServeCmd struct {
	g                 *globals
	cf                *crmFlags
	db, listen        string
	tlsCert, tlsKey   string
	adminPasswordFile string
	workflows         []string
	maxBody           int64
	allowOrigins      []string
}

func newCRMServeCmd(g *globals, cf *crmFlags) *cobra.Command {
	s := &crmServeCmd{g: g, cf: cf}
	c := &cobra.Command{
		Use:   "serve",
		Short: "Serve the CRM Web API and sync API",
		Long: `Serve the CRM Web API (/api/data/), metadata, and the sync API (/api/sync/).

With no flags it listens on 127.0.0.1:5555 with its database in
$XDG_DATA_HOME/pimbridge/crm.db. The first start creates the schema and the
user "admin", whose password comes from --admin-password-file or is printed
once to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return s.run(cmd.Context()) },
	}
	f := c.Flags()
	f.StringVar(&s.db, "db", "", "database: a SQLite file (default $XDG_DATA_HOME/pimbridge/crm.db) or a postgres:// URL")
	f.StringVar(&s.listen, "listen", "127.0.0.1:5555", "address to listen on")
	f.StringVar(&s.tlsCert, "tls-cert", "", "TLS certificate file (PEM); serve HTTPS with --tls-key")
	f.StringVar(&s.tlsKey, "tls-key", "", "TLS key file (PEM)")
	f.StringVar(&s.adminPasswordFile, "admin-password-file", "", "file holding the initial admin password (first start only)")
	f.StringSliceVar(&s.workflows, "workflow", nil, "enable a built-in workflow ("+crmserver.WorkflowFollowUpTask+")")
	f.Int64Var(&s.maxBody, "max-body", 16<<20, "largest request body in bytes")
	f.StringSliceVar(&s.allowOrigins, "allow-origin", nil, "browser origin (scheme://host[:port]) allowed to call the API (repeatable; default none)")
	return c
}

func (s *crmServeCmd) run(ctx context.Context) error {
	if (s.tlsCert == "") != (s.tlsKey == "") {
		return usageErr(errors.New("--tls-cert and --tls-key go together"))
	}
	var wfs []crmserver.Workflow
	for _, w := range s.workflows {
		switch w {
		case crmserver.WorkflowFollowUpTask:
			wfs = append(wfs, crmserver.FollowUpTaskWorkflow{})
		default:
			return usageErr(fmt.Errorf("unknown workflow %q (have %s)", w, crmserver.WorkflowFollowUpTask))
		}
	}
	log := s.g.logger() // -v and log.level, like every command
	st, path, err := openStore(ctx, s.cf, s.db, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := s.ensureAdmin(ctx, st); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	api := crmserver.New(st, &crmserver.Options{Logger: log, Workflows: wfs, MaxBodyBytes: s.maxBody, AllowedOrigins: s.allowOrigins})
	srv := crmserver.HTTPServer(api, crmserver.Timeouts{}, log)
	srv.RegisterOnShutdown(api.EndWaits) // change-feed long-polls end at once
	scheme := "http"
	if s.tlsCert != "" {
		scheme = "https"
	}
	log.Info("crm server listening", "url", scheme+"://"+ln.Addr().String(), "db", path)
	done := make(chan error, 1)
	go func() {
		if s.tlsCert != "" {
			done <- srv.ServeTLS(ln, s.tlsCert, s.tlsKey)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("crm server stopping")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-done
	return nil
}

// ensureAdmin creates the user admin when no user has the admin role.
func (s *crmServeCmd) ensureAdmin(ctx context.Context, st *crmstore.Store) error {
	users, err := st.Users(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if slices.Contains(u.Roles, crmserver.RoleAdmin) {
			return nil
		}
	}
	pw, printed := "", false
	if s.adminPasswordFile != "" {
		// The same checks as any password_file: a world-readable file is
		// refused.
		var err error
		if pw, err = readSecret("--admin-password-file", config.SecretRef{File: s.adminPasswordFile}); err != nil {
			return fmt.Errorf("admin password: %w", err)
		}
	} else {
		var raw [18]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return fmt.Errorf("admin password: %w", err)
		}
		pw, printed = base64.RawURLEncoding.EncodeToString(raw[:]), true
	}
	if _, err := st.CreateUser(ctx, "admin", pw, crmserver.RoleAdmin); err != nil {
		return fmt.Errorf("create admin: %w", err)
	}
	if printed {
		// Printed once, straight to the terminal, never through the logger.
		fmt.Fprintf(s.g.stderr, "Created user admin with password %s (shown only once).\n", pw)
	}
	return nil
}
