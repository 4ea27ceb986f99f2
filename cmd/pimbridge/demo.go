package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pimbridge/pimbridge/internal/demo"
	"github.com/pimbridge/pimbridge/internal/trace"
)

// demoInfo is the one JSON line `demo --print-json` prints when ready.
type demoInfo struct {
	CRM struct {
		URL string `json:"url"`
	} `json:"crm"`
	DAV struct {
		URL         string `json:"url"`
		AddressBook string `json:"addressbook"`
		Calendar    string `json:"calendar"`
		Tasks       string `json:"tasks"`
	} `json:"dav"`
	IMAP struct {
		Addr string `json:"addr"`
	} `json:"imap"`
	User     string `json:"user"`
	Password string `json:"password"`
	DataDir  string `json:"data_dir"`
}

func newDemoCmd(g *globals) *cobra.Command {
	var (
		dataDir, crmAddr, davAddr, imapAddr string
		printJSON                           bool
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the CRM server, a CardDAV/CalDAV server, an IMAP server and the bridge in one process, with sample data",
		Long: `demo starts everything pimbridge needs on 127.0.0.1 with no setup: the CRM server on
SQLite with a few hundred sample contacts, accounts, activities and appointments, an embedded
CardDAV/CalDAV server, an embedded IMAP server with sample mail, and the bridge that keeps them in
step. It prints the URLs and the credentials to point Thunderbird, DAVx5, vdirsyncer or curl at,
and stops on Ctrl-C. --data keeps the state between runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			verbose := g.log.verbose > 0
			log := newLogger(g.stderr, trace.Raise(slog.LevelWarn, g.log.verbose))
			env, err := demo.Start(ctx, demo.Options{DataDir: dataDir, CRMAddr: crmAddr, DAVAddr: davAddr, IMAPAddr: imapAddr, Logger: log})
			if err != nil {
				return err
			}
			defer env.Close()

			// The bridge runs exactly as `pimbridge daemon` would, from a
			// config file the user can reuse: pimbridge --config <it> status.
			cfgPath, err := writeDemoConfig(env)
			if err != nil {
				return err
			}
			dg := *g
			dg.configPath = cfgPath
			if !verbose {
				dg.stderr = io.Discard
			}
			benv, err := dg.openBridge(ctx, "", nil)
			if err != nil {
				return err
			}
			defer benv.Close()
			if err := benv.withMail(ctx); err != nil {
				return err
			}
			benv.page = newUIBackend(&dg) // the web page: pimbridge --config <it> ui --open
			stopUI, err := dg.startUI(ctx, benv.page)
			if err != nil {
				return err
			}
			defer stopUI()
			human := g.stdout
			if printJSON {
				human = g.stderr
			}
			fmt.Fprintln(human, "pimbridge demo: servers up, first sync running...")
			var printErr error
			ready := func() {
				printDemo(human, env, cfgPath)
				if !printJSON {
					return
				}
				var info demoInfo
				info.CRM.URL = env.CRMURL
				info.DAV.URL, info.DAV.AddressBook, info.DAV.Calendar, info.DAV.Tasks = env.DAVURL, env.AddressBook, env.Calendar, env.Tasks
				info.IMAP.Addr = env.IMAPAddr
				info.User, info.Password, info.DataDir = env.User, env.Password, env.DataDir
				printErr = json.NewEncoder(g.stdout).Encode(info)
			}
			err = runDaemon(ctx, benv, false, ready)
			fmt.Fprintln(human, "pimbridge demo: stopped")
			if errors.Is(err, context.Canceled) {
				err = nil
			}
			return errors.Join(err, printErr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "", "keep the demo's state in this directory between runs (default: a temporary directory)")
	f.StringVar(&crmAddr, "crm-listen", "", "CRM server address (default: a free port on 127.0.0.1)")
	f.StringVar(&davAddr, "dav-listen", "", "CardDAV/CalDAV server address (default: a free port on 127.0.0.1)")
	f.StringVar(&imapAddr, "imap-listen", "", "IMAP server address (default: a free port on 127.0.0.1)")
	f.BoolVar(&printJSON, "print-json", false, "when ready, print one JSON line with the URLs and credentials on stdout (human text goes to stderr)")
	return cmd
}

// writeDemoConfig writes the bridge's config for the demo servers into the
// data dir (the password file is the demo's own, mode 0600).
func writeDemoConfig(e *demo.Env) (string, error) {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // a TOML basic string
	pwFile := filepath.Join(e.DataDir, "password")
	cfg := fmt.Sprintf(`# Written by pimbridge demo; reuse it: pimbridge --config %[1]s status
[crm]
url = %[2]s
user = %[3]s
password_file = %[4]s

[client]
id = "demo"
state_dir = %[5]s
interval = "5m"
poll = "2s"

[carddav]
url = %[6]s
user = %[3]s
password_file = %[4]s
addressbook = %[7]s

[caldav]
url = %[6]s
user = %[3]s
password_file = %[4]s
calendar = %[8]s
tasks = %[9]s

[imap]
addr = %[10]s
security = "none"
user = %[3]s
password_file = %[4]s
folders = ["INBOX", "Sent"]
`, filepath.Join(e.DataDir, "config.toml"), q(e.CRMURL), q(e.User), q(pwFile), q(filepath.Join(e.DataDir, "state")),
		q(e.DAVURL), q(e.AddressBook), q(e.Calendar), q(e.Tasks), q(e.IMAPAddr))
	p := filepath.Join(e.DataDir, "config.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("demo: %w", err)
	}
	return p, nil
}

func printDemo(w io.Writer, e *demo.Env, cfgPath string) {
	fmt.Fprintf(w, `pimbridge demo is running (Ctrl-C stops it).

  user / password   %s / %s
  CRM Web API       %s/api/data/contacts
  CardDAV           %s   address book %s
  CalDAV            %s   calendar %s   tasks %s
  IMAP              %s   (no TLS; tag a message $CRMTracked to track it)
  state             %s
  bridge config     %s   (pimbridge --config %s status | errors | plan | ui --open)

Try:
  curl -u %s:%s '%s/api/data/contacts?$select=fullname,emailaddress1&$top=5'
  vdirsyncer / DAVx5 / Thunderbird: point them at %s with the user above.
`, e.User, e.Password, e.CRMURL, e.DAVURL, e.AddressBook, e.DAVURL, e.Calendar, e.Tasks, e.IMAPAddr, e.DataDir, cfgPath, cfgPath,
		e.User, e.Password, e.CRMURL, e.DAVURL)
}
