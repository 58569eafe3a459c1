package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// ClaimPolicy is the certificate policy that marks a claim certificate (a
// 2.25 UUID OID, ITU-T X.667).
var ClaimPolicy = mustOID("2.25.299976301861747575655920594016663832682")

// claimPrefixScheme names, in a claim certificate's URI SAN, the prefix of
// the device names it may provision without a token: the prefix is part
// of the signed certificate, so a rebuilt index cannot lose or widen it.
const claimPrefixScheme = "urn:mqttctl:claim-prefix:"

// IsClaim reports whether c is a claim certificate (it carries ClaimPolicy,
// or the OU ClaimOU): the one test of the mark, for serve's listeners, the
// enrolment decision, check and reindex.
func IsClaim(c *x509.Certificate) bool {
	if c == nil {
		return false
	}
	for _, p := range c.Policies {
		if p.Equal(ClaimPolicy) {
			return true
		}
	}
	return hasClaimOU(c.Subject)
}

// ClaimPrefix returns the prefix of device names the claim certificate c
// may provision without a token ("" when it has none).
func ClaimPrefix(c *x509.Certificate) string {
	for _, u := range c.URIs {
		if s := u.String(); strings.HasPrefix(s, claimPrefixScheme) {
			p, err := url.PathUnescape(strings.TrimPrefix(s, claimPrefixScheme))
			if err == nil {
				return p
			}
		}
	}
	return ""
}

func claimPrefixURI(prefix string) *url.URL {
	u, _ := url.Parse(claimPrefixScheme + url.PathEscape(prefix))
	return u
}

// checkClaimPrefix refuses a prefix that no device name could start with,
// or one so short that it hands out most names.
func checkClaimPrefix(p string) error {
	if p == "" {
		return nil
	}
	if len(p) < 2 {
		return fmt.Errorf("prefix %q: give at least 2 characters (a one-character prefix lets the claim mint most names)", p)
	}
	if err := ident.ValidateNew(p + "x"); err != nil {
		return fmt.Errorf("prefix %q: device names start with it, and %w", p, err)
	}
	return nil
}

// ErrClaimMark: a subject for another profile asks for the OU that marks
// a claim certificate.
var ErrClaimMark = errors.New("the claim mark in another profile")

func hasClaimOU(n pkix.Name) bool {
	return slices.ContainsFunc(n.OrganizationalUnit, func(ou string) bool { return strings.EqualFold(ou, ClaimOU) })
}

// checkNotClaimOU refuses a subject of a profile other than claim that
// has the OU ClaimOU: serve would treat it as a claim certificate.
func checkNotClaimOU(n pkix.Name, what string) error {
	if hasClaimOU(n) {
		return errs.New(fmt.Sprintf("%s has the OU %q, the mark of a claim certificate (serve lets such a certificate only provision): make it without that OU", what, ClaimOU), ErrClaimMark)
	}
	return nil
}
