package confgen

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The reference vector: a line mosquitto_passwd wrote for alice / s3cret.
const aliceLine = "alice:$7$101$+1lSQy0ZgObt/SYz$sHs/4QmqSxjA5Jj77hwvqQUsjaIpwcBpNsySsTuA/NKQZOIiQu+wd49RwQLSgxjJv98JRhIWJuvjyWQXaZtU4Q=="

func TestReferenceVector(t *testing.T) {
	pf := ParsePasswordFile([]byte(aliceLine + "\n"))
	if !pf.Verify("alice", []byte("s3cret")) {
		t.Fatal("alice/s3cret does not verify")
	}
	for _, bad := range []string{"s3cret ", "S3cret", ""} {
		if pf.Verify("alice", []byte(bad)) {
			t.Errorf("password %q verified", bad)
		}
	}
	if pf.Verify("bob", []byte("s3cret")) {
		t.Error("unknown user verified")
	}
}

func TestHashPasswordFormat(t *testing.T) {
	h, err := HashPassword([]byte("pw"), 0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	if len(parts) != 5 || parts[1] != "7" || parts[2] != "101" || len(parts[3]) != 16 || len(parts[4]) != 88 {
		t.Fatalf("hash %q does not have mosquitto's shape", h)
	}
	salt, _ := base64.StdEncoding.DecodeString(parts[3])
	for _, c := range salt {
		if c < 0x21 || c > 0x7e {
			t.Fatalf("salt byte %#x is not printable ASCII", c)
		}
	}
	ph, err := ParseHash(h)
	if err != nil || !ph.Verify([]byte("pw")) || ph.Verify([]byte("px")) {
		t.Fatalf("round trip: %v", err)
	}
	if h2, _ := HashPassword([]byte("pw"), 0); h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	if _, err := HashPassword(nil, 0); err == nil {
		t.Fatal("empty password hashed")
	}
	if h, _ := HashPassword([]byte("pw"), 1000); !strings.HasPrefix(h, "$7$1000$") {
		t.Fatalf("iterations not kept: %s", h)
	}
}

func TestParseHashRejects(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString
	key := b64(make([]byte, 64))
	tests := map[string]string{
		"$7$101$" + b64(make([]byte, 16)) + "$" + key:                   "salt is 16 bytes",
		"$7$101$" + b64(make([]byte, 12)) + "$" + b64(make([]byte, 32)): "hash is 32 bytes",
		"$7$x$" + b64(make([]byte, 12)) + "$" + key:                     "iteration",
		"$5$abc$def":                 "unknown hash type",
		"plain":                      "not a mosquitto",
		"$7$101$!!!$" + key:          "not base64",
		"$6$" + b64([]byte("salt")):  "not a mosquitto",
		"$7$101$" + b64([]byte("a")): "malformed",
		"$6$" + b64([]byte("saltsalt")) + "$" + key: "salt is 8 bytes",
	}
	for in, want := range tests {
		if _, err := ParseHash(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHash(%q) = %v, want %q", in, err, want)
		}
	}
	// $6$: SHA512(password || salt), read but never written.
	// (a 12-byte salt, as mosquitto requires for $6$ too).
	sum := sha512.Sum512([]byte("pwsaltsaltsalt"))
	ph, err := ParseHash("$6$" + b64([]byte("saltsaltsalt")) + "$" + b64(sum[:]))
	if err != nil || !ph.Verify([]byte("pw")) || ph.Verify([]byte("px")) {
		t.Fatalf("$6$: %v", err)
	}
}

func TestPasswordFileKeepsWhatItDoesNotUnderstand(t *testing.T) {
	in := "# operators\r\n" + aliceLine + "\r\n\nbroken line\nbob:$7$garbage\ncarol:" + strings.SplitN(aliceLine, ":", 2)[1] + "\n"
	pf := ParsePasswordFile([]byte(in))
	if got := strings.Join(pf.Users(), ","); got != "alice,bob,carol" {
		t.Fatalf("users %s", got)
	}
	un := pf.Unparsed()
	if len(un) != 3 || un[0].Line != 1 || un[1].Line != 4 || un[2].User != "bob" {
		t.Fatalf("unparsed lines: %+v", un)
	}
	pf.Set("dave", "$7$x")
	pf.Delete("carol")
	out := string(pf.Marshal())
	for _, keep := range []string{"# operators", "broken line", "bob:$7$garbage", aliceLine, "dave:$7$x"} {
		if !strings.Contains(out, keep) {
			t.Errorf("lost %q:\n%s", keep, out)
		}
	}
	if strings.Contains(out, "carol") {
		t.Error("carol not deleted")
	}
	// Duplicate users: the last wins, and Set collapses them.
	pf = ParsePasswordFile([]byte("u:$7$a\nu:$7$b\n"))
	if h, _ := pf.Lookup("u"); h != "$7$b" {
		t.Fatalf("duplicate: %s", h)
	}
	pf.Set("u", "$7$c")
	if string(pf.Marshal()) != "u:$7$c\n" {
		t.Fatalf("Set did not collapse duplicates: %q", pf.Marshal())
	}
}

func TestConcurrentEditsKeepEveryUser(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := HashPassword([]byte(fmt.Sprint("pw", i)), 0)
			if err != nil {
				errs <- err
				return
			}
			errs <- EditPasswordFile(path, true, func(pf *PasswordFile) error {
				pf.Set(fmt.Sprint("user", i), h)
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pf, err := ReadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pf.Users()); n != 20 {
		t.Fatalf("%d users after 20 concurrent adds", n)
	}
	for i := range 20 {
		if !pf.Verify(fmt.Sprint("user", i), []byte(fmt.Sprint("pw", i))) {
			t.Errorf("user%d does not verify", i)
		}
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", st.Mode().Perm())
	}
}

// TestMosquitto21Hashes: the hashes mosquitto 2.1 writes are read and
// verified (issue 20): $7$ with a 64-byte salt and 1000 iterations, and
// $argon2id$ (the test vector from mosquitto's development branch, password
// "secret"); bad ones are refused with the reason.
func TestMosquitto21Hashes(t *testing.T) {
	const argon = "$argon2id$v=19$m=47104,t=1,p=1$1ZNxpvBMc13qDdAdzg1P2hYmJoKphygw+NxReLALlDx89L71T3nJ91uV1vNYPsPGKi1Ie/WNkjfE5NNAkMYa3w$6W9wjbZiWXSP+LcLiMHBG5R+FEeAcANAcRb3Gy4TpFiH4A/1k/P5ESoiqD8kTBFqVoz0bgT+6X5LkT8kN1Ai1g"
	h, err := ParseHash(argon)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Verify([]byte("secret")) || h.Verify([]byte("Secret")) || h.Verify(nil) {
		t.Error("the argon2id test vector does not verify 'secret' alone")
	}
	// A $7$ line with a 64-byte salt, as mosquitto 2.1's mosquitto_passwd writes.
	salt := bytes.Repeat([]byte{7}, 64)
	key, _ := pbkdf2.Key(sha512.New, "s3cret", salt, 1000, 64)
	line := "$7$1000$" + base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(key)
	if h, err := ParseHash(line); err != nil || !h.Verify([]byte("s3cret")) || h.Verify([]byte("x")) {
		t.Errorf("a 64-byte-salt $7$ hash: %v", err)
	}
	// What mqttctl writes for --hash argon2id verifies and has mosquitto's parameters.
	mine, err := HashArgon2id([]byte("pw"))
	if err != nil || !strings.HasPrefix(mine, "$argon2id$v=19$m=47104,t=1,p=1$") {
		t.Fatalf("%v %s", err, mine)
	}
	if h, err := ParseHash(mine); err != nil || !h.Verify([]byte("pw")) || h.Verify([]byte("pw2")) {
		t.Errorf("HashArgon2id does not verify: %v", err)
	}
	// RFC 9106's second recommended setting is within the limits.
	if _, err := ParseHash("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"); err != nil {
		t.Errorf("RFC 9106's m=64 MiB, t=3, p=4: %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"$argon2i$v=19$m=47104,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "unknown hash type $argon2i$"},
		{"$argon2id$v=16$m=47104,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "version"},
		{"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "outside mqttctl's limits"},
		{"$argon2id$v=19$m=47104,t=1000,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "outside mqttctl's limits"},
		// the adversarial run's 1 GiB hash: four wrong passwords took 4 GiB
		{"$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "outside mqttctl's limits"},
		{"$argon2id$v=19$m=262144,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2g", "m*t at most"},
		{"$argon2id$v=19$m=47104,t=1,p=16$c2FsdHNhbHQ$aGFzaGhhc2g", "outside mqttctl's limits"},
		// the second adversarial run: 1,000,000 iterations, 0.5 s a login
		{"$7$1000000$" + base64.StdEncoding.EncodeToString(salt) + "$" + base64.StdEncoding.EncodeToString(key), "above mqttctl's limit of 100000"},
		{"$argon2id$v=19$m=47104,t=1,p=1,x=2$c2FsdHNhbHQ$aGFzaGhhc2g", "malformed argon2id parameters"},
		{"$argon2id$v=19$m=47104,t=1,p=1$c2FsdA$aGFzaGhhc2g", "salt"},
		{"$argon2id$v=19$m=47104,t=1,p=1$c2FsdHNhbHQ==$aGFzaGhhc2g", "salt"},
		{"$argon2id$v=19$m=47104,t=1,p=1$c2FsdHNhbHQ", "malformed $argon2id$"},
		{"$7$1000$" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "$" + base64.StdEncoding.EncodeToString(key), "salt is 32 bytes; mosquitto requires 12 (2.0) or 64 (2.1)"},
	} {
		if _, err := ParseHash(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseHash(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// BenchmarkVerify is what one password login costs serve per hash kind
// (serve checks at most GOMAXPROCS hashes at once).
func BenchmarkVerify(b *testing.B) {
	salt64 := bytes.Repeat([]byte{1}, 64)
	key, _ := pbkdf2.Key(sha512.New, "pw", salt64, 1000, 64)
	argon, _ := HashArgon2id([]byte("pw"))
	p101, _ := HashPassword([]byte("pw"), 101)
	for _, tc := range []struct{ name, hash string }{
		{"pbkdf2-101-mosquitto2.0", p101},
		{"pbkdf2-1000-mosquitto2.1", "$7$1000$" + base64.StdEncoding.EncodeToString(salt64) + "$" + base64.StdEncoding.EncodeToString(key)},
		{"argon2id-46MiB", argon},
	} {
		h, err := ParseHash(tc.hash)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !h.Verify([]byte("pw")) {
					b.Fatal("no match")
				}
			}
		})
	}
}
