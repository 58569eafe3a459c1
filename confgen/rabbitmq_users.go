package confgen

import (
	"errors"
	"fmt"
)

// Kinds of RabbitUsers' refusals; cmd/mqttctl's hints name the flags.
var (
	// ErrPasswordFileWithCertLogin: a password file given for certificate
	// login (mode mtls).
	ErrPasswordFileWithCertLogin = errors.New("certificate login takes its users from the pki, not a password file: RabbitMQ lets a password in CONNECT win over the certificate's identity")
	// ErrNeedsPasswordFile: password login (mode tls) without a password
	// file.
	ErrNeedsPasswordFile = errors.New("password login takes its users from a password file, and none was given")
)

// RabbitRevocationWarning is the warning that goes with certificate login:
// RabbitMQ reads no CRL, so revocation is the absence of a user.
const RabbitRevocationWarning = "RabbitMQ does not read pki/crl.pem here: a client is locked out by having no user, so definitions.json leaves revoked clients out. " +
	"After a revocation on a running cluster, delete the user too (rabbitmqctl delete_user CN); a CN reissued to a new certificate keeps its user, so the old certificate works until it expires"

// RabbitUsers returns who become RabbitMQ users (RabbitOptions.Users) in
// mode, and the warnings that go with them. Certificate login (mtls): the
// CNs certUsers returns (the command reads them from the pki directory:
// pki.CertLoginUsers), with RabbitRevocationWarning; passwordFile must be
// "", or ErrPasswordFileWithCertLogin. Password login (tls): the users of
// passwordFile, which must be given (ErrNeedsPasswordFile); certUsers is
// not called.
func RabbitUsers(mode, passwordFile string, certUsers func() ([]string, error)) (users, warnings []string, err error) {
	switch mode {
	case "mtls":
		if passwordFile != "" {
			return nil, nil, ErrPasswordFileWithCertLogin
		}
		if users, err = certUsers(); err != nil {
			return nil, nil, err
		}
		return users, []string{RabbitRevocationWarning}, nil
	case "tls":
		if passwordFile == "" {
			return nil, nil, ErrNeedsPasswordFile
		}
		pf, err := ReadPasswordFile(passwordFile)
		if err != nil {
			return nil, nil, err
		}
		return pf.Users(), nil, nil
	}
	return nil, nil, optErr("Mode", fmt.Sprintf("%q: use mtls (certificate login) or tls (passwords)", mode))
}
