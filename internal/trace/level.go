package trace

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// LevelTrace is below slog.LevelDebug: one line per protocol exchange.
const LevelTrace = slog.Level(-8)

// ErrLevel is returned by ParseLevel for a name it does not know.
var ErrLevel = errors.New("unknown log level")

// Levels are the level names, from the quietest.
var Levels = []string{"error", "warn", "info", "debug", "trace"}

// ParseLevel maps error, warn, info, debug and trace (any case) to a level.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error":
		return slog.LevelError, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "trace":
		return LevelTrace, nil
	}
	return 0, fmt.Errorf("trace: level %q: %w (want %s)", s, ErrLevel, strings.Join(Levels, ", "))
}

// LevelName is the inverse of ParseLevel.
func LevelName(l slog.Level) string {
	switch {
	case l <= LevelTrace:
		return "trace"
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	}
	return "error"
}

// Raise returns base lowered by n steps of -v: info with -v is debug,
// with -vv trace. It never goes below trace.
func Raise(base slog.Level, n int) slog.Level {
	l := base - slog.Level(4*n)
	if l < LevelTrace {
		l = LevelTrace
	}
	return l
}

// ReplaceAttr names LevelTrace "TRACE" in slog output; pass it as
// slog.HandlerOptions.ReplaceAttr.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l <= LevelTrace {
			a.Value = slog.StringValue("TRACE")
		}
	}
	return a
}
