package identity

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters (RFC 9106 second recommendation, memory-constrained: 64 MiB, t=3).
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	saltLen      = 16
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

//go:embed common-passwords.txt
var commonPasswordsText string

var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	s := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for s.Scan() {
		if w := strings.TrimSpace(s.Text()); w != "" && !strings.HasPrefix(w, "#") {
			m[strings.ToLower(w)] = true
		}
	}
	return m
}()

// ErrWeakPassword explains why a password is refused.
type ErrWeakPassword struct{ Reason string }

func (e *ErrWeakPassword) Error() string { return e.Reason }

// CheckPasswordPolicy refuses passwords shorter than MinPasswordLength characters, found in
// the list of common passwords, made of one repeated character, or containing the email's
// local part.
func CheckPasswordPolicy(password, email string) error {
	n := utf8.RuneCountInString(password)
	if n < MinPasswordLength {
		return &ErrWeakPassword{fmt.Sprintf("must be at least %d characters (it has %d)", MinPasswordLength, n)}
	}
	if n > 1024 {
		return &ErrWeakPassword{"must be at most 1024 characters"}
	}
	lower := strings.ToLower(password)
	if commonPasswords[lower] {
		return &ErrWeakPassword{"is in a list of commonly used passwords; choose another"}
	}
	if strings.Count(lower, string([]rune(lower)[0])) == n {
		return &ErrWeakPassword{"is one character repeated; choose another"}
	}
	if local, _, ok := strings.Cut(strings.ToLower(email), "@"); ok && len(local) >= 4 && strings.Contains(lower, local) {
		return &ErrWeakPassword{"must not contain your email address"}
	}
	return nil
}

// PasswordCost is an argon2id cost: memory in KiB and passes. The zero value is the
// production cost.
type PasswordCost struct {
	MemoryKiB, Passes uint32
}

func (c PasswordCost) orDefault() PasswordCost {
	if c.MemoryKiB == 0 || c.MemoryKiB > argonMemory {
		c.MemoryKiB = argonMemory
	}
	if c.Passes == 0 || c.Passes > argonTime {
		c.Passes = argonTime
	}
	return c
}

// HashPassword returns an argon2id hash in the PHC string format, at the production cost.
func HashPassword(password string) (string, error) {
	return hashPasswordCost(password, PasswordCost{})
}

// hashPasswordCost is HashPassword at a given cost (never above the production cost).
func hashPasswordCost(password string, c PasswordCost) (string, error) {
	c = c.orDefault()
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argonKey([]byte(password), salt, c.Passes, c.MemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, c.MemoryKiB, c.Passes, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// dummyHash is verified against when an account does not exist, so a login takes the same
// time whether or not the email is known. It is a constant (HashPassword of
// "archipelago-timing-equaliser" with the parameters above, computed once offline): hashing it
// at package init cost every process, even `archipelago version`, 4-5 s and 64 MiB of RSS.
const dummyHash = "$argon2id$v=19$m=65536,t=3,p=2$UBHzVa3j9/w4fY75p7TYbA$scFMRmlRFJzkb67Ta3rTViIK6yCwO5b7NdgCZH17N5U"

// argonKey is argon2.IDKey. How many run at once is bounded by the Service's hashing slots
// (Config.MaxConcurrentHashes, ARCHIPELAGO_MAX_PASSWORD_HASHES): each holds 64 MiB.
func argonKey(password, salt []byte, t, mem uint32, threads uint8, keyLen uint32) []byte {
	return argon2.IDKey(password, salt, t, mem, threads, keyLen)
}

// VerifyPassword reports whether password matches the PHC-encoded argon2id hash.
func VerifyPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("unsupported password hash format")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errors.New("unsupported argon2 version")
	}
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil {
		return false, errors.New("malformed argon2 parameters")
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, err
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, err
	}
	if mem > argonMemory || t > 10*argonTime || len(want) > 64 {
		return false, errors.New("argon2 parameters above this server's limits")
	}
	got := argonKey([]byte(password), salt, t, mem, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// GeneratePassword returns a random password that satisfies the policy (for bootstrap).
func GeneratePassword() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// withHashSlot runs f holding one of the process's hashing slots, waiting at most HashWait
// for one (ErrBusy after that).
func (s *Service) withHashSlot(ctx context.Context, f func()) error {
	t := time.NewTimer(s.cfg.HashWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashSlots }()
	f()
	// argon2 allocates a fresh 64 MiB for every computation and drops it at the end: collect
	// it now, while the heap holds little else, so that the next computation reuses those
	// pages instead of the heap growing to twice its peak before the collector runs (a
	// cheap collection: the argon2 memory holds no pointers to scan).
	runtime.GC()
	return nil
}

// verifyPassword is VerifyPassword within the bound on concurrent hashing.
func (s *Service) verifyPassword(ctx context.Context, hash, password string) (ok bool, err error) {
	if serr := s.withHashSlot(ctx, func() { ok, err = VerifyPassword(hash, password) }); serr != nil {
		return false, serr
	}
	if err == nil { // VerifyPassword fails before hashing, never after
		s.hashes.Add(1)
	}
	return ok, err
}

// hashPassword is HashPassword within the bound on concurrent hashing.
func (s *Service) hashPassword(ctx context.Context, password string) (hash string, err error) {
	if serr := s.withHashSlot(ctx, func() { hash, err = hashPasswordCost(password, s.cfg.PasswordCost) }); serr != nil {
		return "", serr
	}
	return hash, err
}

// PasswordVerifications is how many passwords this process has verified (argon2id
// computations of logins and password changes).
func (s *Service) PasswordVerifications() int64 { return s.hashes.Load() }
