package broker

import (
	"context"
	"log/slog"
)

// engineHandler passes the engine's records on at warning level and above
// (mqttctl logs connections and refusals itself), all of them when the
// broker logs at debug level.
type engineHandler struct {
	h slog.Handler
}

func (e engineHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if e.h.Enabled(ctx, slog.LevelDebug) {
		return true
	}
	return l >= slog.LevelWarn && e.h.Enabled(ctx, l)
}

func (e engineHandler) Handle(ctx context.Context, r slog.Record) error { return e.h.Handle(ctx, r) }

func (e engineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return engineHandler{e.h.WithAttrs(as)}
}
func (e engineHandler) WithGroup(g string) slog.Handler { return engineHandler{e.h.WithGroup(g)} }
