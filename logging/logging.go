package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/lmittmann/tint"

	"github.com/s1bridge/s1bridge/config"
)

// Time formats of the text format: short on a terminal, where a person reads
// it live, and a full RFC 3339 time with milliseconds in files and pipes.
const (
	timeFormatTerminal = "15:04:05.000"
	timeFormatFile     = "2006-01-02T15:04:05.000Z07:00"
)

// New builds the process logger of cfg: level cfg.Level, format cfg.Format,
// written to standard error (cfg.Output "stderr" or "") or appended to the
// file cfg.Output, created with mode 0600. The text format is coloured only
// when standard error is a terminal and NO_COLOR is unset. Every secret in
// secrets is redacted (see Redact).
//
// The Closer closes the log file; for standard error it does nothing. Close
// it after the last log call. The logger is safe for concurrent use.
func New(cfg config.Log, secrets []string) (*slog.Logger, io.Closer, error) {
	var (
		w      io.Writer = os.Stderr
		closer io.Closer = nopCloser{}
		color  bool
	)
	if cfg.Output == "" || cfg.Output == config.OutputStderr {
		color = isTerminal(os.Stderr) && os.Getenv("NO_COLOR") == ""
	} else {
		f, err := os.OpenFile(cfg.Output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("logging: log.output: %w", err)
		}
		w, closer = f, f
	}
	h, err := NewHandler(w, cfg, color)
	if err != nil {
		return nil, nil, errors.Join(err, closer.Close())
	}
	return slog.New(Redact(h, secrets)), closer, nil
}

// NewHandler returns the handler New uses, writing to w, without redaction.
// color applies to the text format only.
func NewHandler(w io.Writer, cfg config.Log, color bool) (slog.Handler, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Level)); err != nil {
		return nil, fmt.Errorf("logging: log.level %q: want %s, %s, %s or %s", cfg.Level,
			config.LevelDebug, config.LevelInfo, config.LevelWarn, config.LevelError)
	}
	switch cfg.Format {
	case config.FormatText:
		timeFormat := timeFormatFile
		if color {
			timeFormat = timeFormatTerminal
		}
		return tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: timeFormat, NoColor: !color}), nil
	case config.FormatJSON:
		return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), nil
	}
	return nil, fmt.Errorf("logging: log.format %q: want %s or %s", cfg.Format, config.FormatText, config.FormatJSON)
}

// isTerminal reports whether f is a character device. That is true of a
// terminal and also of /dev/null, where colour is harmless; it is false for
// pipes and files, which is what matters (journald, docker logs, a file).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type nopCloser struct{}

func (nopCloser) Close() error { return nil }
