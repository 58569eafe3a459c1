package enroll

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIdleConnectionsFromOneAddress: finding 4 of the adversarial pass.
// One address opening more TCP connections than the server serves at
// once (no TLS, idle) holds MaxConnsPerIP of them: the others are closed
// at once, and a device at another address (127.0.0.2) enrols meanwhile,
// well before the idle ones reach the handshake deadline (before: it
// waited for them, HeaderTimeout each). Their handshake errors are
// logged at debug level only.
func TestIdleConnectionsFromOneAddress(t *testing.T) {
	if HeaderTimeout > 5*time.Second {
		t.Fatalf("HeaderTimeout %v: an idle connection holds its slot over 5 s", HeaderTimeout)
	}
	const maxConns, perIP = 40, 16
	ln, err := ListenLimits("127.0.0.1:0", maxConns, perIP)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	f := newFixtureOn(t, ln, Options{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}, func(hs *http.Server) {
		hs.ReadHeaderTimeout = 3 * time.Second
	})
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range maxConns + 10 {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// The connections over the bound are closed by the server at once.
	time.Sleep(300 * time.Millisecond)
	closed := 0
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF || err != nil && !strings.Contains(err.Error(), "timeout") {
			closed++
		}
	}
	if closed != len(idle)-perIP {
		t.Errorf("%d of %d idle connections from one address closed at once, want %d", closed, len(idle), len(idle)-perIP)
	}
	// A device at another address gets through while they are held.
	other := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext:     (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
		TLSClientConfig: &tls.Config{RootCAs: f.pool, ServerName: "localhost"},
	}}
	resp, err := other.Get("https://" + f.addr + BasePath + "cacerts")
	if err != nil {
		t.Fatalf("a device at 127.0.0.2 while one address holds its connections: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("cacerts: %d", resp.StatusCode)
	}
	// The idle ones end at the handshake deadline, logged below info.
	time.Sleep(3500 * time.Millisecond)
	if strings.Contains(logs.String(), "TLS handshake error") {
		t.Errorf("handshake errors logged at info or above:\n%s", logs.String())
	}
}
