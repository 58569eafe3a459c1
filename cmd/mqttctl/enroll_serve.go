package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/enroll"
	"github.com/mqttctl/mqttctl/internal/metricsrv"
	"github.com/mqttctl/mqttctl/pki"
)

func newEnrollServeCmd(s *streams, f *enrollFlags) *cobra.Command {
	var (
		listen, certFile, keyFile string
		metrics                   string
		renewAfter                daysFlag
		days                      int
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run an EST server (RFC 7030) where devices enrol and renew their certificates",
		Long: `serve runs an EST server over HTTPS (TLS 1.2 or later) with the pki's broker
certificate (server.crt, or --cert/--key) at https://HOST:PORT/.well-known/est/:

  GET  cacerts         the CA certificates (base64 PKCS#7 certs-only)
  POST simpleenroll    a base64 DER CSR (Content-Type application/pkcs10),
                       authorised by HTTP Basic NAME:TOKEN (a one-time token,
                       'mqttctl enroll token create'; the CSR's CN must be NAME)
                       or by a bootstrap certificate ('mqttctl pki issue
                       bootstrap NAME') as TLS client certificate
  POST simplereenroll  the same, authorised by the device's current certificate
                       (TLS client authentication); the CSR keeps its subject
  GET  csrattrs        204: no attributes required

The certificate is a client certificate (CN = NAME = the MQTT identity) whose
extensions come from the client profile, never from the CSR. Every request
reads the pki directory afresh, under its lock: a revocation with 'mqttctl pki
revoke' applies at once. One log line per issued certificate (name, serial,
how it was authorised). The server's certificate is read again when its files
change (after 'mqttctl pki renew server', within a second) and on SIGHUP; a
new pair that does not load is logged and the old one kept. SIGTERM or SIGINT
stops it gracefully.

--metrics HOST:PORT serves Prometheus metrics at /metrics (off by default, no
authentication): mqttctl_enrolments_total{authorised_by} and
mqttctl_enrolment_refusals_total{status}.`,
		Example: `  mqttctl enroll serve --pki pki --listen 0.0.0.0:8443
  mqttctl enroll serve --pki pki --listen 127.0.0.1:8443 --renew-after-expiry 30d
  mqttctl enroll serve --pki pki --listen 127.0.0.1:8443 --metrics 127.0.0.1:9235`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if metrics != "" {
				if err := metricsrv.CheckAddr(metrics); err != nil {
					return err
				}
			}
			if (certFile == "") != (keyFile == "") {
				return errors.New("give --cert and --key together")
			}
			if certFile == "" {
				certFile, keyFile = filepath.Join(f.pki.dir, pki.ServerCertFile), filepath.Join(f.pki.dir, pki.ServerKeyFile)
			}
			log := slog.New(slog.NewTextHandler(s.Err, nil))
			certs, err := enroll.NewCertReloader(certFile, keyFile, log)
			if err != nil {
				return fmt.Errorf("the server's certificate: %w", err)
			}
			d := f.dir(s)
			if f.pki.caPassFile != "" {
				if _, err := d.CAPassword(); err != nil {
					return err
				}
			} else {
				d.CAPassword = nil // never a terminal prompt in the middle of a request
			}
			if days < 1 || days > pki.LeafMaxDays {
				return fmt.Errorf("--days %d: give 1 to %d", days, pki.LeafMaxDays)
			}
			if err := d.CheckIssuer(); err != nil {
				return err
			}
			srv := enroll.New(enroll.Options{Dir: d, RenewAfterExpiry: time.Duration(renewAfter), Days: days, Log: log})
			hs := srv.HTTPServer(listen, tls.Certificate{})
			hs.TLSConfig.Certificates, hs.TLSConfig.GetCertificate = nil, certs.GetCertificate
			ln, err := enroll.Listen(listen)
			if err != nil {
				return fmt.Errorf("--listen %s: %w", listen, err)
			}
			if metrics != "" {
				ms, err := metricsrv.Serve(metrics, log, srv.Collector())
				if err != nil {
					ln.Close()
					return err
				}
				defer ms.Close()
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer func() { signal.Stop(hup); close(hup) }()
			go func() {
				for range hup {
					log.Info("SIGHUP: reading the server's certificate again", "cert", certFile)
					certs.Reload(true)
				}
			}()
			done := make(chan error, 1)
			go func() { done <- hs.ServeTLS(ln, "", "") }()
			log.Info("EST server listening", "url", "https://"+ln.Addr().String()+enroll.BasePath, "pki", d.Path)
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
			}
			log.Info("stopping")
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := hs.Shutdown(sctx); err != nil {
				return err
			}
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8443", "address to listen on (HOST:PORT)")
	fl.StringVar(&certFile, "cert", "", "the server's certificate (default: the pki's server.crt)")
	fl.StringVar(&keyFile, "key", "", "the server's key (default: the pki's server.key)")
	fl.Var(&renewAfter, "renew-after-expiry", "let a certificate that ended less than this long ago re-enrol (30d; default: never)")
	fl.StringVar(&metrics, "metrics", "", "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9235; unauthenticated: keep it on loopback); default off")
	fl.IntVar(&days, "days", pki.DefaultLeafDays, "validity of the issued certificates in days")
	return cmd
}
