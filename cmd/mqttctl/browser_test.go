package main

// A real browser against `mqttctl serve`: headless Chromium loads a page
// served over https that runs mqtt.js (testdata/mqtt.min.js, the npm
// package's browser build), which connects over wss with a password,
// subscribes, publishes at QoS 1 and shows the round trip; and Chromium
// blocks ws:// to a non-local name from an https page (mixed content). The
// CA is trusted through an NSS database in a temporary HOME, so the host
// name check is Chromium's own.

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

const browserPage = `<!doctype html>
<html><head><meta charset="utf-8"><title>loading</title><script src="/mqtt.min.js"></script></head>
<body><pre id="log"></pre><script>
const p = new URLSearchParams(location.search);
const say = (t) => { document.title = t; document.getElementById("log").textContent += t + "\n"; };
try {
  const c = mqtt.connect(p.get("url"), {username: p.get("user") || undefined, password: p.get("pass") || undefined,
    protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, clientId: "browser-" + Math.random().toString(16).slice(2)});
  c.on("connect", () => c.subscribe("web/#", {qos: 1}, (err) => {
    if (err) { say("ERR:subscribe " + err.message); return; }
    c.publish("web/round", "hello from the browser", {qos: 1});
  }));
  c.on("message", (topic, msg) => say("OK:" + topic + " " + msg.toString()));
  c.on("error", (e) => say("ERR:" + e.message));
  c.on("close", () => { if (!document.title.startsWith("OK:")) say("ERR:closed"); });
} catch (e) { say("ERR:" + e.message); }
</script></body></html>`

func TestBrowserOverWSS(t *testing.T) {
	chromium := testutil.RequireBinary(t, "chromium")
	certutil := testutil.RequireBinary(t, "certutil")
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--host", "localhost", "--host", "mqtt.test"); code != 0 {
		t.Fatal(e)
	}
	passwd := filepath.Join(dir, "passwd")
	if code, _, e := runCLI(t, "s3cret\n", "passwd", "add", passwd, "web", "--password-stdin"); code != 0 {
		t.Fatal(e)
	}
	ports := testutil.FreePorts(t, 3)
	conf := filepath.Join(dir, "serve.conf")
	tlsLines := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\n", filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"))
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("per_listener_settings true\nlistener %d 127.0.0.1\nprotocol websockets\n%spassword_file %s\nlistener %d 127.0.0.1\nprotocol websockets\nallow_anonymous true\n",
		ports[0], tlsLines, passwd, ports[1])), 0o644); err != nil {
		t.Fatal(err)
	}
	_, serveLog := testutil.Start(t, dir, mqttctlBin, "serve", "-c", conf)
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", ports[0]), 10*time.Second)

	// The page, over https with the broker's certificate.
	cert, err := tls.LoadX509KeyPair(filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile("testdata/mqtt.min.js")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mqtt.min.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write(js)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(browserPage))
	})
	ln, err := tls.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", ports[2]), &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	page := &http.Server{Handler: mux}
	go page.Serve(ln)
	t.Cleanup(func() { page.Close() })

	// Chromium trusts the CA through an NSS database in its HOME. Its
	// profile lives outside t.TempDir: Chromium's helpers may still write
	// there for a moment after it is stopped.
	bdir, err := os.MkdirTemp("", "mqttctl-browser")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 20 {
			if os.RemoveAll(bdir) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	home := filepath.Join(bdir, "home")
	nss := "sql:" + filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700); err != nil {
		t.Fatal(err)
	}
	testutil.MustRun(t, dir, certutil, "-d", nss, "-N", "--empty-password")
	testutil.MustRun(t, dir, certutil, "-d", nss, "-A", "-t", "C,,", "-n", "mqttctl test CA", "-i", filepath.Join(p, "ca.crt"))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(filepath.Join(bdir, "profile")),
		chromedp.Env("HOME="+home),
		chromedp.Flag("host-resolver-rules", "MAP mqtt.test 127.0.0.1"),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	var mu sync.Mutex
	var console []string
	chromedp.ListenTarget(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *log.EventEntryAdded:
			console = append(console, e.Entry.Text)
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				console = append(console, string(a.Value))
			}
		}
	})
	if err := chromedp.Run(bctx, log.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	open := func(query string) string {
		ctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		var title string
		err := chromedp.Run(ctx,
			chromedp.Navigate(fmt.Sprintf("https://localhost:%d/?%s", ports[2], query)),
			chromedp.Poll(`document.title.startsWith("OK:") || document.title.startsWith("ERR:")`, nil, chromedp.WithPollingTimeout(15*time.Second)),
			chromedp.Title(&title))
		if err != nil {
			t.Fatalf("page %s: %v (title %q)\nconsole: %v\nserve log:\n%s", query, err, title, console, serveLog.String())
		}
		return title
	}

	// a) wss with a password: subscribe, publish QoS 1, the message comes back.
	if title := open(fmt.Sprintf("url=wss://localhost:%d/mqtt&user=web&pass=s3cret", ports[0])); title != "OK:web/round hello from the browser" {
		t.Errorf("wss round trip: %q\nconsole: %v\nserve log:\n%s", title, console, serveLog.String())
	}
	// The same with a wrong password is refused by the broker.
	if title := open(fmt.Sprintf("url=wss://localhost:%d/mqtt&user=web&pass=wrong", ports[0])); !strings.HasPrefix(title, "ERR:") {
		t.Errorf("wss with a wrong password: %q", title)
	}
	// c) ws:// to a non-local name from an https page is blocked by Chromium.
	title := open(fmt.Sprintf("url=ws://mqtt.test:%d/mqtt", ports[1]))
	mu.Lock()
	blocked := strings.Contains(strings.Join(console, "\n"), "This request has been blocked; this endpoint must be available over WSS")
	mu.Unlock()
	t.Logf("ws:// from https: page says %q; Chromium blocked it: %v", title, blocked)
	if !strings.HasPrefix(title, "ERR:") || !blocked {
		t.Errorf("ws:// from an https page: title %q, console: %v", title, console)
	}
	for _, l := range strings.Split(serveLog.String(), "\n") {
		if strings.Contains(l, "client connected") && strings.Contains(l, fmt.Sprintf(":%d", ports[1])) {
			t.Errorf("the blocked ws:// connection reached the broker: %s", l)
		}
	}
}
