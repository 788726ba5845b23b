// Package logging builds the s1bridge process logger from config.Log: log/slog
// with tint for the text format (coloured only on a terminal) or slog's JSON
// handler, at the configured level, to standard error or a file.
//
// Every logger New returns is wrapped by [Redact], which replaces each
// registered secret (the API tokens and NATS credentials of
// config.Config.Secrets) by "[REDACTED]" wherever it shows: in the message,
// in attribute keys and values, inside groups, in errors' messages and in
// values printed with fmt. It is the second line of defence behind
// config.Secret, for a token that reached a log call as a plain string (an
// upstream error echoing a request, a URL, a dump of a request).
package logging
