package mqtturl

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in, addr string
		tls, bad bool
	}{
		{in: "mqtts://localhost", addr: "localhost:8883", tls: true},
		{in: "ssl://h:1", addr: "h:1", tls: true},
		{in: "mqtt://127.0.0.1", addr: "127.0.0.1:1883"},
		{in: "tcp://[::1]:1884", addr: "[::1]:1884"},
		{in: "http://x", bad: true},
		{in: "localhost:8883", bad: true},
		{in: "mqtts://", bad: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.bad || err == nil && (got.Addr != tt.addr || got.TLS != tt.tls) {
			t.Errorf("Parse(%q) = %+v, %v", tt.in, got, err)
		}
	}
	if _, err := CAPool("/nonexistent"); err == nil {
		t.Error("CAPool of a missing file")
	}
}
