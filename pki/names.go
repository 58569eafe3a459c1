package pki

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/net/idna"
)

// Hosts are the names a server certificate is valid for, split by type.
type Hosts struct {
	DNS []string
	IPs []net.IP
}

// All returns every name as a string, DNS names first, in the given order.
func (h Hosts) All() []string {
	out := append([]string(nil), h.DNS...)
	for _, ip := range h.IPs {
		out = append(out, ip.String())
	}
	return out
}

// Empty reports whether no name is set.
func (h Hosts) Empty() bool { return len(h.DNS) == 0 && len(h.IPs) == 0 }

// defaultHosts returns the names a local broker certificate needs: localhost,
// 127.0.0.1, ::1 and the machine's host name (when it is a valid DNS name).
func defaultHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if hn, err := os.Hostname(); err == nil {
		hn = strings.ToLower(strings.TrimSuffix(hn, "."))
		if hn != "" && hn != "localhost" && validateDNSName(hn) == nil {
			hosts = append(hosts, hn)
		}
	}
	return hosts
}

// parseHosts types each value as an IP address or a DNS name and rejects what
// cannot be a certificate name: empty values, host:port, URLs, e-mail
// addresses, malformed names and wildcard abuse ("*", "*.com", "a.*.b").
// Duplicates are dropped; order is kept.
func parseHosts(values []string) (Hosts, error) {
	var h Hosts
	seen := map[string]bool{}
	for _, raw := range values {
		v := strings.TrimSpace(raw)
		if v == "" {
			return Hosts{}, fmt.Errorf("empty host name: give a DNS name (broker.example.com) or an IP address (192.0.2.10)")
		}
		// IPv6 in brackets without port, e.g. [::1].
		if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			v = v[1 : len(v)-1]
		}
		if addr, err := netip.ParseAddr(v); err == nil {
			if addr.Zone() != "" {
				return Hosts{}, fmt.Errorf("host %q: an IP address with a zone (%%%s) cannot go in a certificate", raw, addr.Zone())
			}
			key := addr.Unmap().String()
			if !seen[key] {
				seen[key] = true
				h.IPs = append(h.IPs, net.IP(addr.Unmap().AsSlice()))
			}
			continue
		}
		if strings.Contains(v, "://") {
			return Hosts{}, fmt.Errorf("host %q: give the host name only, without a scheme (e.g. %q)", raw, hostOfURL(v))
		}
		if strings.Contains(v, "@") {
			return Hosts{}, fmt.Errorf("host %q: e-mail addresses are not server names", raw)
		}
		if host, port, err := net.SplitHostPort(v); err == nil {
			return Hosts{}, fmt.Errorf("host %q: a port (%s) does not belong in a certificate; give %s", raw, port, host)
		}
		name := strings.ToLower(strings.TrimSuffix(v, "."))
		if !isASCII(name) {
			// An internationalised name goes into a certificate as its
			// A-labels (bücher.example -> xn--bcher-kva.example).
			a, err := idna.Lookup.ToASCII(name)
			if err != nil {
				return Hosts{}, fmt.Errorf("host %q is not a valid internationalised domain name: %v", raw, err)
			}
			name = a
		}
		if looksNumeric(name) {
			return Hosts{}, fmt.Errorf("host %q looks like an IPv4 address but is not a valid one (four numbers from 0 to 255, without leading zeros, e.g. 192.0.2.10); a DNS name cannot end in a number", raw)
		}
		if err := validateDNSName(name); err != nil {
			return Hosts{}, fmt.Errorf("host %q: %w", raw, err)
		}
		if !seen[name] {
			seen[name] = true
			h.DNS = append(h.DNS, name)
		}
	}
	return h, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// looksNumeric reports whether a name's last label is all digits (or hex
// digits after 0x): no DNS name ends that way, and resolvers read such a
// name as an IPv4 address in some numeric form (10.0.0.01, 1.2.3, 0x7f.1).
func looksNumeric(name string) bool {
	last := name[strings.LastIndexByte(name, '.')+1:]
	if last == "" {
		return false
	}
	digits := strings.TrimPrefix(last, "0x")
	hex := len(digits) < len(last)
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if !(c >= '0' && c <= '9' || hex && (c >= 'a' && c <= 'f')) {
			return false
		}
	}
	return true
}

func hostOfURL(v string) string {
	rest := v[strings.Index(v, "://")+3:]
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if host, _, err := net.SplitHostPort(rest); err == nil {
		return host
	}
	return rest
}

// validateDNSName checks a lower-case DNS name, allowing one leading "*."
// label when at least two labels follow it (*.example.com, not *.com).
func validateDNSName(name string) error {
	if len(name) > 253 {
		return fmt.Errorf("name is longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" {
			if i != 0 {
				return fmt.Errorf("a wildcard may only be the whole first label (*.example.com)")
			}
			if len(labels) < 3 {
				return fmt.Errorf("wildcard %q is too broad: it needs at least two labels after *. (e.g. *.example.com)", name)
			}
			continue
		}
		if strings.Contains(l, "*") {
			return fmt.Errorf("a wildcard may only be the whole first label (*.example.com)")
		}
		if l == "" {
			return fmt.Errorf("empty label in %q", name)
		}
		if len(l) > 63 {
			return fmt.Errorf("label %q is longer than 63 characters", l)
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return fmt.Errorf("character %q is not allowed in a DNS name", c)
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("label %q may not start or end with '-'", l)
		}
	}
	return nil
}
