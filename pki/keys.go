package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
)

// KeyType names a key algorithm and size, as accepted by --key-type.
type KeyType string

// The key types mqttctl can generate.
const (
	ECP256  KeyType = "ec-p256"
	ECP384  KeyType = "ec-p384"
	Ed25519 KeyType = "ed25519"
	RSA2048 KeyType = "rsa2048"
	RSA3072 KeyType = "rsa3072"
	RSA4096 KeyType = "rsa4096"
)

// DefaultKeyType is EC P-256: supported by every MQTT client and broker, and fast.
const DefaultKeyType = ECP256

// KeyTypes lists every supported key type, default first.
var KeyTypes = []KeyType{ECP256, ECP384, Ed25519, RSA2048, RSA3072, RSA4096}

// ParseKeyType validates a --key-type value.
func ParseKeyType(s string) (KeyType, error) {
	if s == "" {
		return DefaultKeyType, nil
	}
	for _, k := range KeyTypes {
		if strings.EqualFold(s, string(k)) {
			return k, nil
		}
	}
	names := make([]string, len(KeyTypes))
	for i, k := range KeyTypes {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown key type %q: use one of %s", s, strings.Join(names, ", "))
}

// Warning returns a caveat about the key type, or "".
func (k KeyType) Warning() string {
	if k == Ed25519 {
		return "Ed25519 certificates are rejected by many MQTT clients (ESP32/mbedTLS, EMQX/Erlang); use ec-p256 unless every client supports Ed25519"
	}
	return ""
}

// GenerateKey makes a new private key of type k.
func GenerateKey(k KeyType) (crypto.Signer, error) {
	var (
		s   crypto.Signer
		err error
	)
	switch k {
	case ECP256:
		s, err = keyutil.GenerateSigner("EC", "P-256", 0)
	case ECP384:
		s, err = keyutil.GenerateSigner("EC", "P-384", 0)
	case Ed25519:
		s, err = keyutil.GenerateSigner("OKP", "Ed25519", 0)
	case RSA2048:
		s, err = keyutil.GenerateSigner("RSA", "", 2048)
	case RSA3072:
		s, err = keyutil.GenerateSigner("RSA", "", 3072)
	case RSA4096:
		s, err = keyutil.GenerateSigner("RSA", "", 4096)
	default:
		return nil, fmt.Errorf("unknown key type %q", k)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", k, err)
	}
	return s, nil
}

// keyTypeOf describes a public or private key as a KeyType-like string
// ("ec-p256", "rsa2048", ...).
func keyTypeOf(key any) string {
	if s, ok := key.(crypto.Signer); ok {
		key = s.Public()
	}
	switch k := key.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return string(ECP256)
		case elliptic.P384():
			return string(ECP384)
		case elliptic.P521():
			return "ec-p521"
		}
		return "ec"
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa%d", k.N.BitLen())
	case ed25519.PublicKey:
		return string(Ed25519)
	}
	return fmt.Sprintf("%T", key)
}

// marshalKey encodes a private key as PEM PKCS#8. With a non-empty password
// the key is encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), which
// openssl and mosquitto read. An empty password is refused rather than
// silently writing an unencrypted key.
func marshalKey(key crypto.Signer, password []byte) ([]byte, error) {
	opts := []pemutil.Options{pemutil.WithPKCS8(true)}
	if password != nil {
		if len(password) == 0 {
			return nil, errors.New("refusing to encrypt a key with an empty password")
		}
		opts = append(opts, pemutil.WithPassword(password))
	}
	block, err := pemutil.Serialize(key, opts...)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(block), nil
}

// ErrKeyEncrypted is returned by parseKey when the key is encrypted and no
// password was given.
var ErrKeyEncrypted = errors.New("key is encrypted: a password is needed")

// ErrWrongPassword is returned when an encrypted key does not decrypt.
var ErrWrongPassword = errors.New("wrong password for encrypted key")

// isEncryptedKey reports whether PEM data holds an encrypted private key.
func isEncryptedKey(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil && (block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] == "4,ENCRYPTED")
}

// parseKey reads a PEM private key in PKCS#1, SEC1 or PKCS#8 form, encrypted
// (PKCS#8 PBES2 or legacy openssl -des3/-aes256 PEM) or not. name is used in
// error messages. A password is needed only for an encrypted key.
func parseKey(data []byte, name string, password []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM data found: expected a private key (-----BEGIN PRIVATE KEY-----)", name)
	}
	if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("%s: holds a %s, not a private key", name, strings.ToLower(block.Type))
	}
	encrypted := isEncryptedKey(data)
	if encrypted {
		if block.Type == "ENCRYPTED PRIVATE KEY" {
			if err := checkPKCS8Encryption(block.Bytes); err != nil {
				return nil, fmt.Errorf("%s: %w; convert it with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in %s -out %s.new", name, err, name, name)
			}
		}
		if len(password) == 0 {
			return nil, fmt.Errorf("%s: %w", name, ErrKeyEncrypted)
		}
	}
	opts := []pemutil.Options{pemutil.WithFilename(name), pemutil.WithFirstBlock()}
	if encrypted {
		opts = append(opts, pemutil.WithPassword(password))
	}
	k, err := pemutil.Parse(data, opts...)
	if err != nil {
		if encrypted && (errors.Is(err, x509.IncorrectPasswordError) || strings.Contains(err.Error(), "error parsing") || strings.Contains(err.Error(), "padding")) {
			return nil, fmt.Errorf("%s: %w", name, ErrWrongPassword)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported key type %T", name, k)
	}
	return s, nil
}

// ReadKey reads and parses a private key file.
func ReadKey(path string, password []byte) (crypto.Signer, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	return parseKey(data, path, password)
}

var (
	oidPBES2         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt        = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACSHA1      = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidPBESHA13DES   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBESHA1RC2    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
	knownPRFNames    = map[string]string{"1.2.840.113549.2.10": "hmacWithSHA384", "1.2.840.113549.2.11": "hmacWithSHA512", "1.2.840.113549.2.8": "hmacWithSHA224"}
	knownLegacyNames = map[string]string{oidPBESHA13DES.String(): "PBE-SHA1-3DES", oidPBESHA1RC2.String(): "PBE-SHA1-RC2-40"}
)

// encryptionInfo is the outer structure of an EncryptedPrivateKeyInfo.
type encryptionInfo struct {
	Algo struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue
	}
	Data []byte
}

type pbes2Params struct {
	KDF struct {
		Algorithm  asn1.ObjectIdentifier
		Parameters asn1.RawValue
	}
	Enc asn1.RawValue
}

type pbkdf2Params struct {
	Salt      []byte
	Iteration int
	KeyLength int `asn1:"optional"`
	PRF       struct {
		Algorithm asn1.ObjectIdentifier
		Params    asn1.RawValue `asn1:"optional"`
	} `asn1:"optional"`
}

// checkPKCS8Encryption returns an error naming the scheme when an encrypted
// PKCS#8 key uses one that go.step.sm/crypto cannot decrypt (it would
// otherwise report a wrong password).
func checkPKCS8Encryption(der []byte) error {
	var info encryptionInfo
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		return fmt.Errorf("malformed encrypted key: %w", err)
	}
	if !info.Algo.Algorithm.Equal(oidPBES2) {
		name := knownLegacyNames[info.Algo.Algorithm.String()]
		if name == "" {
			name = info.Algo.Algorithm.String()
		}
		return fmt.Errorf("key is encrypted with %s, which mqttctl cannot read (only PBES2)", name)
	}
	var p pbes2Params
	if _, err := asn1.Unmarshal(info.Algo.Parameters.FullBytes, &p); err != nil {
		return fmt.Errorf("malformed PBES2 parameters: %w", err)
	}
	if p.KDF.Algorithm.Equal(oidScrypt) {
		return errors.New("key is encrypted with scrypt, which mqttctl cannot read (only PBKDF2)")
	}
	if !p.KDF.Algorithm.Equal(oidPBKDF2) {
		return fmt.Errorf("key uses key derivation %s, which mqttctl cannot read (only PBKDF2)", p.KDF.Algorithm)
	}
	var kdf pbkdf2Params
	if _, err := asn1.Unmarshal(p.KDF.Parameters.FullBytes, &kdf); err != nil {
		return fmt.Errorf("malformed PBKDF2 parameters: %w", err)
	}
	if prf := kdf.PRF.Algorithm; len(prf) > 0 && !prf.Equal(oidHMACSHA1) && !prf.Equal(oidHMACSHA256) {
		name := knownPRFNames[prf.String()]
		if name == "" {
			name = prf.String()
		}
		return fmt.Errorf("key uses PBKDF2 with %s, which mqttctl cannot read (only hmacWithSHA1 or hmacWithSHA256)", name)
	}
	return nil
}

// publicKeysEqual reports whether two public keys are the same.
func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if e, ok := a.(equaler); ok {
		return e.Equal(b)
	}
	return false
}

// keyMatches reports whether key is the private half of pub.
func keyMatches(key crypto.Signer, pub crypto.PublicKey) bool {
	return publicKeysEqual(key.Public(), pub)
}
