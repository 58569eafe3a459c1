package broker

import (
	"context"
	"log/slog"
)

// engineHandler passes the engine's records on at warning level and above
// (mqttctl logs connections and refusals itself), all of them when the
// broker logs at debug level, and drops the engine's error record for a
// publish that the ACL hook refused on purpose.
type engineHandler struct {
	h slog.Handler
}

func (e engineHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if e.h.Enabled(ctx, slog.LevelDebug) {
		return true
	}
	return l >= slog.LevelWarn && e.h.Enabled(ctx, l)
}

func (e engineHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "publish packet error" || r.Message == "error processing packet" && !e.h.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	if r.Message == "failed to get data" && recordErrorIs(r, "key not found") {
		// The store reads the $SYS record at every start; on the first
		// start there is none yet, which is not an error.
		return nil
	}
	return e.h.Handle(ctx, r)
}

// recordErrorIs reports whether a record's "error" attribute has the text.
func recordErrorIs(r slog.Record, text string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" && a.Value.String() == text {
			found = true
			return false
		}
		return true
	})
	return found
}

func (e engineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return engineHandler{e.h.WithAttrs(as)}
}
func (e engineHandler) WithGroup(g string) slog.Handler { return engineHandler{e.h.WithGroup(g)} }
