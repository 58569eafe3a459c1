package broker_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/mqtturl"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/loadgen"
)

// IdleBudget is what one idle mutual-TLS connection may cost the broker:
// its heap and goroutine stacks after a GC, counted, not timed. Today it is
// about 47 KB: the engine runs two goroutines per client (a reader whose
// idle frames need a 16 KB stack, a writer with 8 KB), and crypto/tls
// keeps the peer certificate, AES-GCM state and its buffers (about 9 KB).
// Before the outbound queue was bounded (OutboundQueue) it was 112 KB.
// mosquitto 2.0 takes about 20 KB of RSS per idle mTLS connection.
const IdleBudget = 56 << 10

// TestIdleConnectionMemoryBudget opens idle mutual-TLS connections from
// another process (so that the clients' own memory is not counted) and
// checks what each costs the broker.
func TestIdleConnectionMemoryBudget(t *testing.T) {
	if os.Getenv("MQTTCTL_IDLE_CLIENTS") != "" {
		t.Skip("the helper process runs TestIdleClientsHelper")
	}
	const n = 1000
	if os.Getenv("MQTTCTL_HEAP_PROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	f := brokertest.NewFixture(t, brokertest.FixtureOptions{Hosts: []string{"localhost"}, Clients: []string{"idle"}})
	port := testutil.FreePort(t)
	c, err := confgen.Parse([]byte(fmt.Sprintf(`listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
`, port, filepath.Join(f.PKI, "ca.crt"), filepath.Join(f.PKI, "server.crt"), filepath.Join(f.PKI, "server.key"))), "idle.conf")
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Start(t, c, nil, broker.Options{})
	before := liveBytes()
	helper := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$", "-test.v")
	helper.Env = append(os.Environ(), "MQTTCTL_IDLE_CLIENTS="+strings.Join([]string{strconv.Itoa(port), strconv.Itoa(n), f.PKI}, ","))
	out := &testutil.SyncBuffer{}
	helper.Stdout, helper.Stderr = out, out
	stdin, _ := helper.StdinPipe()
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); helper.Wait() }()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(out.String(), "IDLE-OPEN"); {
		if time.Now().After(deadline) || strings.Contains(out.String(), "FAIL") {
			t.Fatalf("the client process did not open %d connections:\n%s", n, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	per := (liveBytes() - before) / n
	if p := os.Getenv("MQTTCTL_HEAP_PROFILE"); p != "" {
		hf, _ := os.Create(p)
		pprof.WriteHeapProfile(hf)
		hf.Close()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		t.Logf("heap inuse %d, stack inuse %d, goroutines %d", m.HeapInuse, m.StackInuse, runtime.NumGoroutine())
	}
	t.Logf("%d idle mTLS connections: %d bytes each (budget %d)", n, per, IdleBudget)
	if per > IdleBudget {
		t.Errorf("an idle mTLS connection costs the broker %d bytes, over the budget of %d", per, IdleBudget)
	}
}

// liveBytes is the heap and stack memory in use after a full collection.
func liveBytes() int64 {
	var m runtime.MemStats
	for range 6 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// TestIdleClientsHelper is the client process of
// TestIdleConnectionMemoryBudget: it opens the connections, says IDLE-OPEN
// and holds them until its standard input closes.
func TestIdleClientsHelper(t *testing.T) {
	spec := os.Getenv("MQTTCTL_IDLE_CLIENTS")
	if spec == "" {
		t.Skip("run by TestIdleConnectionMemoryBudget")
	}
	parts := strings.Split(spec, ",")
	n, _ := strconv.Atoi(parts[1])
	pool, err := mqtturl.CAPool(filepath.Join(parts[2], "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(parts[2], "clients", "idle.crt"), filepath.Join(parts[2], "clients", "idle.key"))
	if err != nil {
		t.Fatal(err)
	}
	tg := loadgen.Target{Addr: "127.0.0.1:" + parts[0], TLS: &tls.Config{ServerName: "localhost", RootCAs: pool, Certificates: []tls.Certificate{cert}}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		buf := make([]byte, 1)
		os.Stdin.Read(buf)
		cancel()
	}()
	if err := loadgen.Idle(ctx, tg, n, 16, func(int) { fmt.Println("IDLE-OPEN") }); err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
}
