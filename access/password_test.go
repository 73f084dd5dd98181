package access

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

const testPassword = "correct horse battery staple"

// The hash of a new password, as the code writes it: PHC format with
// the parameters, a 16-byte salt and a 32-byte key.
var phcHash = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPassword(t *testing.T) {
	h1, err := hashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := hashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{h1, h2} {
		if !phcHash.MatchString(h) {
			t.Errorf("hash %q is not argon2id in PHC format with the current parameters", h)
		}
		if strings.Contains(h, testPassword) {
			t.Errorf("hash %q holds the password", h)
		}
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		hash, password string
		want           bool
	}{
		{h1, testPassword, true},
		{h2, testPassword, true},
		{h1, testPassword + " ", false},
		{h1, "Correct horse battery staple", false},
		{h1, testPassword[:len(testPassword)-1], false},
		{h1, "", false},
	} {
		if got := checkPassword(tc.hash, tc.password); got != tc.want {
			t.Errorf("checkPassword(%q, %q) = %v, want %v", tc.hash, tc.password, got, tc.want)
		}
	}

	for _, tc := range []struct {
		name, password, says string
	}{
		{"empty", "", "too short"},
		{"eleven", "12345678901", "too short"},
		{"eleven runes", strings.Repeat("日", 11), "too short"},
		{"over 1024 bytes", strings.Repeat("x", 1025), "too long"},
		{"1024 bytes of 342 runes", strings.Repeat("日", 342), "too long"},
	} {
		if h, err := hashPassword(tc.password); err == nil || !strings.Contains(err.Error(), tc.says) || h != "" {
			t.Errorf("%s: hashPassword = %q, %v; want an error saying %q", tc.name, h, err, tc.says)
		}
	}

	if h := dummyHash(); !phcHash.MatchString(h) || dummyHash() != h {
		t.Errorf("dummyHash = %q; want one well-formed hash, made once", h)
	}
}

func TestCheckPasswordMalformed(t *testing.T) {
	good, err := hashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", "argon2id", "v=19", "m=…,t=…,p=…", salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	salt, key := parts[4], parts[5]
	flip := func(s string) string { // another first base64 digit: the last may hold only padding bits
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	for _, tc := range []struct{ name, hash string }{
		{"empty", ""},
		{"only dollars", "$$$$$"},
		{"the password itself", testPassword},
		{"argon2i", with(1, "argon2i")},
		{"argon2d", with(1, "argon2d")},
		{"upper case", with(1, "ARGON2ID")},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"scrypt", with(1, "scrypt")},
		{"older version", with(2, "v=16")},
		{"no version", with(2, "")},
		{"version not a number", with(2, "v=x")},
		{"no parameters", with(3, "")},
		{"no lanes", with(3, "m=19456,t=2")},
		{"no memory", with(3, "m=0,t=2,p=1")},
		{"negative memory", with(3, "m=-1,t=2,p=1")},
		{"memory past the bound", with(3, fmt.Sprintf("m=%d,t=2,p=1", 1<<22+1))},
		{"memory of 2^40 KiB", with(3, fmt.Sprintf("m=%d,t=2,p=1", 1<<40))},
		{"memory overflowing an int", with(3, "m=99999999999999999999999,t=2,p=1")},
		{"memory overflowing a uint32", with(3, fmt.Sprintf("m=%d,t=2,p=1", 1<<32+19456))},
		{"no passes", with(3, "m=19456,t=0,p=1")},
		{"negative passes", with(3, "m=19456,t=-1,p=1")},
		{"many passes", with(3, "m=19456,t=17,p=1")},
		{"passes overflowing a uint32", with(3, fmt.Sprintf("m=19456,t=%d,p=1", 1<<32+2))},
		{"no lanes, zero", with(3, "m=19456,t=2,p=0")},
		{"negative lanes", with(3, "m=19456,t=2,p=-1")},
		{"lanes overflowing a byte", with(3, "m=19456,t=2,p=256")},
		{"lanes overflowing to one", with(3, "m=19456,t=2,p=257")},
		{"parameters in another order", with(3, "t=2,m=19456,p=1")},
		{"salt not base64", with(4, "!!!not base64!!!")},
		{"salt padded", with(4, salt+"==")},
		{"key not base64", with(5, "%%%")},
		{"key padded", with(5, key+"=")},
		{"no key", with(5, "")},
		{"another salt", with(4, flip(salt))},
		{"another key", with(5, flip(key))},
		{"key truncated", with(5, key[:len(key)-4])},
		{"key extended", with(5, key+"AAAA")},
		{"other passes", with(3, "m=19456,t=3,p=1")},
		{"other memory", with(3, "m=19457,t=2,p=1")},
		{"other lanes", with(3, "m=19456,t=2,p=2")},
		{"a part more", good + "$x"},
		{"a part fewer", strings.Join(parts[:5], "$")},
		{"text after", good + "x"},
		{"a space in the key", with(5, key[:20]+" "+key[20:])},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: checkPassword(%q) panicked: %v", tc.name, tc.hash, r)
				}
			}()
			if checkPassword(tc.hash, testPassword) {
				t.Errorf("%s: checkPassword(%q) matched", tc.name, tc.hash)
			}
		}()
	}
	// The password's length is bounded before any work.
	if checkPassword(good, testPassword+strings.Repeat(" ", 1024)) {
		t.Error("a password of over 1024 bytes matched")
	}
	if !checkPassword(good, testPassword) {
		t.Fatal("the unaltered hash does not match: the cases above prove nothing")
	}
}

// FuzzCheckPassword checks that no stored hash, however malformed,
// makes checkPassword panic, and that only argon2id hashes match.
func FuzzCheckPassword(f *testing.F) {
	good, err := hashPassword(testPassword)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, testPassword)
	f.Add(good, "wrong password")
	f.Add("", "")
	f.Add("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5", "x")
	f.Add("$argon2id$v=19$m=8,t=1,p=255$$a2V5", "x")
	f.Add("$argon2id$v=19$m=-1,t=1,p=1$c2FsdHNhbHQ$a2V5", "x")
	f.Add("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "x")
	f.Fuzz(func(t *testing.T, hash, password string) {
		// Parameters checkPassword accepts can cost up to 4 GiB and 16
		// passes by design; keep each run of the fuzzer cheap.
		if parts := strings.Split(hash, "$"); len(parts) == 6 {
			var mem, passes, threads int
			fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &passes, &threads)
			if mem > 64*1024 || passes > 4 || len(parts[5]) > 4096 || len(parts[4]) > 4096 {
				t.Skip("too costly to fuzz")
			}
		}
		if checkPassword(hash, password) && !strings.Contains(hash, "$argon2id$v=19$") {
			t.Errorf("checkPassword(%q, %q) matched a hash that is not argon2id", hash, password)
		}
	})
}
