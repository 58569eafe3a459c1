package pki

import "slices"

// CertLoginUsers returns the usernames a broker that logs clients in by
// their certificate's CN, and reads no CRL, must know (RabbitMQ with
// ssl_cert_login_from = common_name): the CN of each client certificate
// that is neither revoked nor replaced, in index order, each once. Such a
// broker locks a client out only by having no user for it, so a revoked
// certificate's CN is left out; a CN whose certificate was reissued keeps
// its user through the new one. Expired and not yet valid certificates
// keep theirs: the TLS handshake refuses them, and renewal keeps the name.
// Bootstrap, bridge and server certificates log in to no broker as users.
func CertLoginUsers(entries []Entry) []string {
	var users []string
	for _, e := range entries {
		if e.Profile == ProfileClient && e.Status != "revoked" && e.ReplacedBy == "" && e.CN != "" && !slices.Contains(users, e.CN) {
			users = append(users, e.CN)
		}
	}
	return users
}
