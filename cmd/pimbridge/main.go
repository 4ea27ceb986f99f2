// Command pimbridge syncs CRM data with CardDAV, CalDAV and IMAP servers and
// runs the CRM server and the offline engine. See README.md and
// `pimbridge help` for the commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(os.Stderr, err))
}

// exitCode prints err and maps it to the documented exit codes: 0 ok,
// 1 error, 2 usage, 3 sync finished with item errors.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var ce *codeError
	if errors.As(err, &ce) {
		if ce.err != nil {
			fmt.Fprintln(stderr, "pimbridge:", ce.err)
		}
		return ce.code
	}
	fmt.Fprintln(stderr, "pimbridge:", err)
	return 1
}
