package access

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// The argon2id parameters of new passwords: OWASP's recommendation for
// argon2id (19 MiB, two passes, one lane), about 30 ms on this project's
// two-core machines. Stored hashes carry their parameters, so raising
// these applies to passwords set from then on.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// MinPasswordLength is the shortest password accepted. Length, not
// character classes, is what makes a password hard to guess (NIST SP
// 800-63B).
const MinPasswordLength = 12

// hashPassword returns the PHC-format argon2id hash of password.
func hashPassword(password string) (string, error) {
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return "", fmt.Errorf("the password is too short: use at least %d characters", MinPasswordLength)
	}
	if len(password) > 1024 {
		return "", errors.New("the password is too long: use at most 1024 bytes")
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// checkPassword reports whether password matches the stored hash. A
// hash that is empty (a principal without a password) or malformed
// matches nothing.
func checkPassword(hash, password string) bool {
	var (
		version, mem, passes int
		threads              uint8
	)
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || len(password) > 1024 {
		return false
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &passes, &threads); err != nil ||
		mem <= 0 || mem > 1<<22 || passes <= 0 || passes > 16 || threads == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, uint32(passes), uint32(mem), threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// dummyHash is checked against when a login names no principal, so that
// an unknown name takes as long to refuse as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := hashPassword("not a password anyone has")
	return h
})
