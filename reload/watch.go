package reload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

// WatchOptions says how often to look and how long to wait for quiet.
type WatchOptions struct {
	Poll  time.Duration // 0: 1 s
	Quiet time.Duration // a change is acted on once nothing changed for this long; 0: 1 s
}

// Watch polls every file the config names (the config, its include_dir
// files, certificate, key, CA, CRL, password and ACL files), and when one
// changed and then nothing changed for w.Quiet, runs Once and logs what it
// decided. A file replaced by rename, and a symlink flipped to another target
// (Kubernetes' ..data), count as changes: each file's state is the path it
// resolves to, its inode, size and modification time. Watch returns when ctx
// ends.
func Watch(ctx context.Context, o Options, w WatchOptions, log *slog.Logger) error {
	if w.Poll <= 0 {
		w.Poll = time.Second
	}
	if w.Quiet <= 0 {
		w.Quiet = time.Second
	}
	last := Snapshot(o.Config)
	log.Info("watching", "config", o.Config, "files", slices.Sorted(maps.Keys(last)))
	t := time.NewTicker(w.Poll)
	defer t.Stop()
	pending := false
	var changedAt time.Time
	for {
		select {
		case <-ctx.Done():
			log.Info("stopped", "config", o.Config)
			return nil
		case <-t.C:
		}
		cur := Snapshot(o.Config)
		if !maps.Equal(cur, last) {
			for _, p := range slices.Sorted(maps.Keys(cur)) {
				if cur[p] != last[p] {
					log.Info("changed", "file", p)
				}
			}
			for p := range last {
				if _, ok := cur[p]; !ok {
					log.Info("no longer named", "file", p)
				}
			}
			last, pending, changedAt = cur, true, time.Now()
			continue
		}
		if !pending || time.Since(changedAt) < w.Quiet {
			continue
		}
		pending = false
		res, err := Once(ctx, o)
		logResult(log, res, err)
	}
}

// logResult logs one decision of Watch.
func logResult(log *slog.Logger, res *Result, err error) {
	var ce *CheckError
	switch {
	case errors.As(err, &ce):
		for _, d := range ce.Diagnostics {
			if !d.Warning {
				log.Error("check failed", "at", d.Pos.String(), "problem", d.Msg)
			}
		}
		log.Error("not reloaded: no signal sent, the broker keeps its old files")
	case errors.Is(err, ErrBrokerQuit):
		log.Error("the broker quit on the reload: start it again once its log says why", "pid", res.PID, "error", err.Error())
	case err != nil && res.PID != 0:
		log.Error("signalled, but not confirmed", "pid", res.PID, "error", err.Error())
	case err != nil:
		log.Error("not reloaded", "error", err.Error())
	default:
		args := []any{"pid", res.PID}
		for _, s := range res.Served {
			args = append(args, "listener "+s.Listener, s.Fingerprint)
		}
		if len(res.Served) == 0 {
			log.Info("reloaded", args...)
			return
		}
		log.Info("reloaded, new certificate served", args...)
	}
}

// Snapshot is the state of every file the config names, by path: where it
// resolves to through symlinks, its device, inode, size and modification
// time (or why it cannot be read).
func Snapshot(conf string) map[string]string {
	files, dirs := configFiles(conf, 0)
	if c, err := confgen.Load(conf); err == nil {
		r, _ := c.Resolve()
		files = append(files, r.Files()...)
		for _, l := range r.Listeners {
			if l.TLS != nil && l.TLS.CAPath != "" {
				dirs = append(dirs, l.TLS.CAPath)
			}
		}
	}
	out := map[string]string{}
	for _, d := range dirs {
		out[d] = state(d)
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			out[p] = state(p)
		}
	}
	for _, f := range files {
		out[f] = state(f)
	}
	return out
}

// state is one file's state (see Snapshot).
func state(p string) string {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "error: " + err.Error()
	}
	fi, err := os.Stat(target)
	if err != nil {
		return "error: " + err.Error()
	}
	var dev, ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		dev, ino = uint64(st.Dev), st.Ino
	}
	return fmt.Sprintf("%s dev %d inode %d size %d mtime %d", target, dev, ino, fi.Size(), fi.ModTime().UnixNano())
}

// configFiles is the config and the files its include_dir lines bring in,
// and those directories.
func configFiles(conf string, depth int) (files, dirs []string) {
	files = []string{conf}
	data, err := fsx.ReadRegular(conf, fsx.MaxEditSize)
	if err != nil || depth > 8 {
		return files, nil
	}
	c, err := confgen.Parse(data, conf)
	if err != nil {
		return files, nil
	}
	ds := c.Global
	for _, l := range c.Listener {
		ds = append(ds, l.Options...)
	}
	for _, d := range ds {
		if d.Key != "include_dir" {
			continue
		}
		dirs = append(dirs, d.Value)
		matches, _ := filepath.Glob(filepath.Join(d.Value, "*.conf"))
		for _, m := range matches {
			f, sub := configFiles(m, depth+1)
			files = append(files, f...)
			dirs = append(dirs, sub...)
		}
	}
	return files, dirs
}
