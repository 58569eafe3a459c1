package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
)

// startBroker starts b and turns "address already in use" into advice;
// fix says how to pick another address with this command.
func startBroker(b *broker.Broker, res *confgen.Resolved, fix string) error {
	err := b.Start()
	if errors.Is(err, syscall.EADDRINUSE) {
		for _, l := range res.Listeners {
			if strings.Contains(err.Error(), l.Addr()) {
				return fmt.Errorf("%s: port %d on %s is already in use (another broker? see: ss -ltnp 'sport = :%d'): stop it, or %s", l.Pos, l.Port, hostOr(l.Bind), l.Port, fix)
			}
		}
		return fmt.Errorf("%w: stop the other program, or %s", err, fix)
	}
	return err
}

func hostOr(bind string) string {
	if bind == "" {
		return "all interfaces"
	}
	return bind
}

// runUntilSignal serves until SIGINT or SIGTERM; SIGHUP re-reads the
// configuration through reload and applies it.
func runUntilSignal(b *broker.Broker, log *slog.Logger, reload func() (*confgen.Resolved, error)) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping")
			return b.Close()
		case <-hup:
			r, err := reload()
			if err == nil {
				err = b.Reload(r)
			}
			if err != nil {
				log.Error("reload failed; the previous configuration stays", "error", err)
			}
		}
	}
}

// resolved validates a loaded config for the broker: any error diagnostic
// makes it unusable.
func resolved(c *confgen.Config, err error) (*confgen.Resolved, error) {
	if err != nil {
		return nil, err
	}
	r, ds := c.ResolveForServe()
	if confgen.HasErrors(ds) {
		var errs []error
		for _, d := range ds {
			if !d.Warning {
				errs = append(errs, errors.New(d.String()))
			}
		}
		return nil, errors.Join(errs...)
	}
	return r, nil
}
