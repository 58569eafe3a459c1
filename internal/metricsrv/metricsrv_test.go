package metricsrv

import "testing"

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{{"127.0.0.1", true}, {"::1", true}, {"localhost", true}, {"127.3.4.5", true}, {"0.0.0.0", false}, {"", false}, {"::", false}, {"192.0.2.1", false}, {"example.com", false}} {
		if got := IsLoopback(tc.host); got != tc.want {
			t.Errorf("IsLoopback(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{{"127.0.0.1:9234", true}, {"[::1]:9234", true}, {":9234", true}, {"9234", false}, {"127.0.0.1", false}, {"", false}} {
		if err := CheckAddr(tc.addr); (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
}
