package pki

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
)

// The PKCS#12 structures (RFC 7292) that p12FriendlyName rewrites.
type p12PFX struct {
	Version  int
	AuthSafe p12ContentInfo
	MacData  p12MacData `asn1:"optional"`
}

type p12ContentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0,explicit,optional"`
}

type p12MacData struct {
	Mac        p12DigestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type p12DigestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type p12SafeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue  `asn1:"tag:0,explicit"`
	Attributes []p12Attribute `asn1:"set,optional"`
}

type p12Attribute struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue `asn1:"set"`
}

var (
	oidP12Data         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidP12KeyBag       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidP12ShroudedKey  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidP12FriendlyName = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidSHA1            = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
)

// p12FriendlyName gives the key of a PKCS#12 file the friendly name name
// (what keytool -list shows as the alias, openssl pkcs12 -info as
// friendlyName; without it keytool says "1") and recomputes the MAC with
// password. go-pkcs12 writes no friendly name for a key; the key bag sits
// in the unencrypted part of the file, so nothing needs decrypting.
func p12FriendlyName(der []byte, password, name string) ([]byte, error) {
	var pfx p12PFX
	if rest, err := asn1.Unmarshal(der, &pfx); err != nil || len(rest) != 0 || !pfx.AuthSafe.ContentType.Equal(oidP12Data) {
		return nil, fmt.Errorf("not a password-integrity PKCS#12 file (%v)", err)
	}
	// A data ContentInfo's [0] holds an OCTET STRING.
	octets := func(ci p12ContentInfo) ([]byte, error) {
		var b []byte
		_, err := asn1.Unmarshal(ci.Content.Bytes, &b)
		return b, err
	}
	wrap := func(b []byte) (asn1.RawValue, error) {
		inner, err := asn1.Marshal(b)
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}, err
	}
	authSafe, err := octets(pfx.AuthSafe)
	if err != nil {
		return nil, err
	}
	var safes []p12ContentInfo
	if _, err := asn1.Unmarshal(authSafe, &safes); err != nil {
		return nil, err
	}
	nameAttr, err := friendlyNameAttr(name)
	if err != nil {
		return nil, err
	}
	named := 0
	for i, ci := range safes {
		if !ci.ContentType.Equal(oidP12Data) {
			continue // encrypted: the certificates
		}
		content, err := octets(ci)
		if err != nil {
			return nil, err
		}
		var bags []p12SafeBag
		if _, err := asn1.Unmarshal(content, &bags); err != nil {
			return nil, err
		}
		for j, b := range bags {
			if b.ID.Equal(oidP12ShroudedKey) || b.ID.Equal(oidP12KeyBag) {
				bags[j].Attributes = append(bags[j].Attributes, nameAttr)
				named++
			}
		}
		if content, err = asn1.Marshal(bags); err != nil {
			return nil, err
		}
		if safes[i].Content, err = wrap(content); err != nil {
			return nil, err
		}
	}
	if named != 1 {
		return nil, fmt.Errorf("%d keys found in the unencrypted part, want 1", named)
	}
	if authSafe, err = asn1.Marshal(safes); err != nil {
		return nil, err
	}
	if pfx.AuthSafe.Content, err = wrap(authSafe); err != nil {
		return nil, err
	}
	var h func() hash.Hash
	switch alg := pfx.MacData.Mac.Algorithm.Algorithm; {
	case alg.Equal(oidSHA1):
		h = sha1.New
	case alg.Equal(oidSHA256):
		h = sha256.New
	default:
		return nil, fmt.Errorf("MAC algorithm %v not supported", alg)
	}
	bmp, err := bmpPassword(password)
	if err != nil {
		return nil, err
	}
	key := pkcs12KDF(h, 3, bmp, pfx.MacData.MacSalt, pfx.MacData.Iterations, h().Size())
	m := hmac.New(h, key)
	m.Write(authSafe)
	pfx.MacData.Mac.Digest = m.Sum(nil)
	return asn1.Marshal(pfx)
}

// friendlyNameAttr is the friendlyName attribute: one BMPString.
func friendlyNameAttr(name string) (p12Attribute, error) {
	var b []byte
	for _, r := range utf16.Encode([]rune(name)) {
		b = append(b, byte(r>>8), byte(r))
	}
	v, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: 30, Bytes: b}) // BMPString
	if err != nil {
		return p12Attribute{}, err
	}
	return p12Attribute{ID: oidP12FriendlyName, Value: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: v}}, nil
}

// bmpPassword is a password as PKCS#12 hashes it: UTF-16BE with a
// terminating zero.
func bmpPassword(pw string) ([]byte, error) {
	var b []byte
	for _, r := range pw {
		if r > 0xFFFF {
			return nil, errors.New("the password holds a character outside the Basic Multilingual Plane")
		}
	}
	for _, r := range utf16.Encode([]rune(pw)) {
		b = append(b, byte(r>>8), byte(r))
	}
	return append(b, 0, 0), nil
}

// pkcs12KDF is RFC 7292 appendix B.2: n bytes of key material of purpose
// id (3: MAC key) from password and salt.
func pkcs12KDF(newHash func() hash.Hash, id byte, password, salt []byte, iterations, n int) []byte {
	u, v := newHash().Size(), newHash().BlockSize()
	fill := func(s []byte) []byte {
		if len(s) == 0 {
			return nil
		}
		out := make([]byte, v*((len(s)+v-1)/v))
		for i := range out {
			out[i] = s[i%len(s)]
		}
		return out
	}
	D := bytes.Repeat([]byte{id}, v)
	I := append(fill(salt), fill(password)...)
	var out []byte
	for len(out) < n {
		hh := newHash()
		hh.Write(D)
		hh.Write(I)
		A := hh.Sum(nil)
		for r := 1; r < iterations; r++ {
			hh.Reset()
			hh.Write(A)
			A = hh.Sum(A[:0])
		}
		out = append(out, A...)
		if len(out) >= n {
			break
		}
		B := make([]byte, v)
		for i := range B {
			B[i] = A[i%u]
		}
		for j := 0; j < len(I); j += v {
			// I_j = (I_j + B + 1) mod 2^(8v)
			carry := 1
			for k := v - 1; k >= 0; k-- {
				s := int(I[j+k]) + int(B[k]) + carry
				I[j+k], carry = byte(s), s>>8
			}
		}
	}
	return out[:n]
}
