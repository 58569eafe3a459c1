package confgen

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestLibraryErrorsNameNoFlag: confgen never names a CLI flag (a flag one
// command has, another lacks); it returns a kind that carries what the
// advice needs, and cmd/mqttctl's hints turn it into flags.
func TestLibraryErrorsNameNoFlag(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	os.MkdirAll(filepath.Join(pkiDir, "servers"), 0o700)
	for _, f := range []string{"ca.crt", "server.crt", "server.key"} {
		os.WriteFile(filepath.Join(pkiDir, f), nil, 0o600)
	}
	other, err := HashPassword([]byte("x"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := HashPassword([]byte("a"), 0)
	b, _ := HashPassword([]byte("b"), 0)
	pf := ParsePasswordFile([]byte("alice:" + a + "\nbob:" + b + "\ndave:" + other + "\n"))
	flag := regexp.MustCompile(`(^|\s)--[a-z]`)
	for _, tc := range []struct {
		name string
		run  func() (text string, kind error)
		want any // pointer to the kind errors.As must find
	}{
		{"bridge certificate missing", func() (string, error) {
			_, err := GenerateMosquitto(MosquittoOptions{PKIDir: pkiDir, Mode: "mtls", BridgeTo: "central.example.com:8883",
				BridgeName: "site1", BridgeTopics: []string{"sensors/# out 1"}})
			if err == nil {
				return "", nil
			}
			return err.Error(), err
		}, new(*MissingCertError)},
		{"rabbitmq node certificate missing", func() (string, error) {
			_, err := GenerateRabbitMQ(RabbitOptions{PKIDir: pkiDir, Mode: "mtls", Nodes: []RabbitNode{{"rabbit1", "mq1.example.com", 8883}}})
			if err == nil {
				return "", nil
			}
			return err.Error(), err
		}, new(*MissingCertError)},
		{"emqx user of another iteration count", func() (string, error) {
			_, _, problems := EMQXUsers(pf, "passwd")
			if len(problems) != 1 {
				t.Fatalf("problems %v, want dave's", problems)
			}
			return problems[0].String(), problems[0].Kind
		}, new(*IterationsError)},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			text, kind := tc.run()
			if text == "" {
				t.Fatal("no error")
			}
			if flag.MatchString(text) {
				t.Errorf("%q names a flag", text)
			}
			if kind == nil || !errors.As(kind, tc.want) {
				t.Errorf("%q: kind %T, want %T", text, kind, tc.want)
			}
		})
	}
}
