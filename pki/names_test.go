package pki

import (
	"strings"
	"testing"
)

func TestParseHosts(t *testing.T) {
	tests := []struct {
		in      []string
		dns     []string
		ips     []string
		wantErr string
	}{
		{in: []string{"localhost", "127.0.0.1", "::1"}, dns: []string{"localhost"}, ips: []string{"127.0.0.1", "::1"}},
		{in: []string{"Broker.Example.COM."}, dns: []string{"broker.example.com"}},
		{in: []string{"[::1]"}, ips: []string{"::1"}},
		{in: []string{"*.example.com"}, dns: []string{"*.example.com"}},
		{in: []string{"a", "a", "10.0.0.1", "10.0.0.1"}, dns: []string{"a"}, ips: []string{"10.0.0.1"}},
		{in: []string{"broker.lan:8883"}, wantErr: "give broker.lan"},
		{in: []string{"[::1]:8883"}, wantErr: "a port"},
		{in: []string{""}, wantErr: "empty host name"},
		{in: []string{"   "}, wantErr: "empty host name"},
		{in: []string{"*"}, wantErr: "too broad"},
		{in: []string{"*.com"}, wantErr: "too broad"},
		{in: []string{"a.*.example.com"}, wantErr: "whole first label"},
		{in: []string{"b*.example.com"}, wantErr: "whole first label"},
		{in: []string{"mqtts://broker.example.com:8883"}, wantErr: `"broker.example.com"`},
		{in: []string{"user@example.com"}, wantErr: "e-mail"},
		{in: []string{"bad name"}, wantErr: "not allowed"},
		{in: []string{"-lead.example.com"}, wantErr: "may not start"},
		{in: []string{"a..b"}, wantErr: "empty label"},
		{in: []string{"fe80::1%eth0"}, wantErr: "zone"},
		{in: []string{"192.168.1.300"}, wantErr: "not a valid one"},
		{in: []string{"10.0.0.01"}, wantErr: "not a valid one"},
		{in: []string{"999.1.1.1"}, wantErr: "not a valid one"},
		{in: []string{"1.2.3"}, wantErr: "not a valid one"},
		{in: []string{"0x7f.1"}, wantErr: "not a valid one"},
		{in: []string{"host1.example.com", "1a.example", "x.0xg"}, dns: []string{"host1.example.com", "1a.example", "x.0xg"}},
		{in: []string{"bücher.example"}, dns: []string{"xn--bcher-kva.example"}},
		{in: []string{"b\u202ecker.example"}, wantErr: "internationalised"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, ","), func(t *testing.T) {
			h, err := parseHosts(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseHosts(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHosts(%q): %v", tt.in, err)
			}
			if strings.Join(h.DNS, ",") != strings.Join(tt.dns, ",") {
				t.Errorf("DNS = %q, want %q", h.DNS, tt.dns)
			}
			var ips []string
			for _, ip := range h.IPs {
				ips = append(ips, ip.String())
			}
			if strings.Join(ips, ",") != strings.Join(tt.ips, ",") {
				t.Errorf("IPs = %q, want %q", ips, tt.ips)
			}
		})
	}
}

func TestLeafDays(t *testing.T) {
	tests := []struct {
		days     int
		force    bool
		wantWarn bool
		wantErr  bool
	}{
		{365, false, false, false},
		{398, false, false, false},
		{399, false, true, false},
		{826, false, false, true},
		{826, true, true, false},
		{0, false, false, true},
		{-1, true, false, true},
	}
	for _, tt := range tests {
		w, err := leafDays(tt.days, tt.force)
		if (err != nil) != tt.wantErr || (w != "") != tt.wantWarn {
			t.Errorf("leafDays(%d, %v) = %q, %v", tt.days, tt.force, w, err)
		}
	}
}

func TestParseKeyType(t *testing.T) {
	if k, err := ParseKeyType(""); err != nil || k != ECP256 {
		t.Fatalf("default key type = %v, %v", k, err)
	}
	if _, err := ParseKeyType("dsa"); err == nil || !strings.Contains(err.Error(), "ec-p256") {
		t.Fatalf("ParseKeyType(dsa) = %v, want an error listing the types", err)
	}
}
