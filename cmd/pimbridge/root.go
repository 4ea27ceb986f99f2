package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, as README states them.
const (
	exitError      = 1
	exitUsage      = 2
	exitItemErrors = 3
)

// codeError carries an exit code other than 1 to main.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string {
	if e.err == nil {
		return "exit code " + strconv.Itoa(e.code)
	}
	return e.err.Error()
}
func (e *codeError) Unwrap() error { return e.err }

func usageErr(err error) error { return &codeError{code: exitUsage, err: err} }

// globals are the flags and streams every subcommand sees.
type globals struct {
	configPath string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	log        *logState
}

// run builds the command tree and executes args. It is main without the
// process: tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, log: &logState{}}
	root := &cobra.Command{
		Use:           "pimbridge",
		Short:         "Keep CRM data and CardDAV, CalDAV and IMAP servers in step",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "config file (default $XDG_CONFIG_HOME/pimbridge/config.toml)")
	root.PersistentFlags().CountVarP(&g.log.verbose, "verbose", "v", "log more: -v debug, -vv a trace line per protocol exchange (over log.level)")
	root.PersistentFlags().BoolVar(&g.log.traceBodies, "trace-bodies", false, "trace level, with request and response bodies (secrets redacted)")
	// The level before any config is read (commands without one honour
	// -v too); loadConfig applies log.level over it.
	root.PersistentPreRun = func(*cobra.Command, []string) { g.applyVerbose(slog.LevelInfo) }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })
	for _, newCmd := range commands {
		root.AddCommand(newCmd(g))
	}
	err := root.ExecuteContext(ctx)
	if err != nil && isUsage(err) {
		return usageErr(err)
	}
	return err
}

// commands lists the subcommand constructors; each lives in its own file.
var commands = []func(*globals) *cobra.Command{
	newVersionCmd,
	newMapCmd,
	newCRMCmd,
	newGoOfflineCmd,
	newGoOnlineCmd,
	newSetOfflineCmd,
	newStatusCmd,
	newSyncCmd,
	newDaemonCmd,
	newPlanCmd,
	newErrorsCmd,
	newSetPrimaryCmd,
	newDemoCmd,
	newLogLevelCmd,
	newUICmd,
}

// isUsage reports whether err is one of cobra's own argument errors.
func isUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") ||
		strings.HasPrefix(s, "requires ") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "required flag")
}
