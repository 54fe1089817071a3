// Package seal owns encryption of secrets at rest: island admin tokens, verifier key
// secrets and restic repository passwords are sealed with AES-256-GCM under the master
// key before they reach PostgreSQL, and opened only where they are used.
//
// Each sealed value names the key that sealed it ("v1:<key id>:<base64>"), so the master
// key can be rotated: a Keyring holds the current key and any number of older ones, seals
// with the current key and opens with whichever key the value names. Every value is bound
// to its purpose by additional data (for example "island/7/admin_token"), so a sealed value
// copied to another row does not open there.
//
// It must never log, print or return a plaintext except to its caller.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the size of a master key in bytes.
const KeySize = 32

// ErrUnknownKey means a sealed value names a key this keyring does not hold.
var ErrUnknownKey = errors.New("sealed with a key this keyring does not hold")

// ErrCorrupt means a sealed value is malformed or fails authentication
// (tampered, or bound to another purpose).
var ErrCorrupt = errors.New("sealed value is corrupt or was sealed for another purpose")

// Keyring seals with its current key and opens with any key it holds.
type Keyring struct {
	current    string
	currentKey []byte
	aeads      map[string]cipher.AEAD
}

// KeyID names a key: the first 8 hex digits of SHA-256 of the key.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:4])
}

// ParseKey decodes a master key written as 64 hex digits or standard base64 of 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	return nil, fmt.Errorf("a master key must be %d bytes written as 64 hex digits or base64", KeySize)
}

// NewKey returns a fresh random master key, hex encoded.
func NewKey() string {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

// ParseKeyring reads a keyring: one key a line, the first is current, the others are older
// keys still accepted for opening. Blank lines and lines starting with # are ignored.
func ParseKeyring(text string) (*Keyring, error) {
	var keys [][]byte
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no master key found")
	}
	return NewKeyring(keys[0], keys[1:]...)
}

// NewKeyring builds a keyring sealing with current and opening with current or any of older.
func NewKeyring(current []byte, older ...[]byte) (*Keyring, error) {
	kr := &Keyring{aeads: map[string]cipher.AEAD{}}
	for i, k := range append([][]byte{current}, older...) {
		if len(k) != KeySize {
			return nil, fmt.Errorf("key %d is %d bytes, want %d", i, len(k), KeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		id := KeyID(k)
		kr.aeads[id] = aead
		if i == 0 {
			kr.current, kr.currentKey = id, k
		}
	}
	return kr, nil
}

// CurrentKeyID is the id of the key new values are sealed with.
func (k *Keyring) CurrentKeyID() string { return k.current }

// Seal encrypts plaintext for purpose under the current key.
func (k *Keyring) Seal(purpose string, plaintext []byte) string {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out := aead.Seal(nonce, nonce, plaintext, []byte(purpose))
	return "v1:" + k.current + ":" + base64.RawStdEncoding.EncodeToString(out)
}

// SealString is Seal for a string.
func (k *Keyring) SealString(purpose, plaintext string) string {
	return k.Seal(purpose, []byte(plaintext))
}

// Open decrypts a value sealed for purpose.
func (k *Keyring) Open(purpose, sealed string) ([]byte, error) {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, ErrCorrupt
	}
	aead, ok := k.aeads[parts[1]]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", parts[1], ErrUnknownKey)
	}
	raw, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, ErrCorrupt
	}
	pt, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// OpenString is Open returning a string.
func (k *Keyring) OpenString(purpose, sealed string) (string, error) {
	b, err := k.Open(purpose, sealed)
	return string(b), err
}

// Column is a table column holding sealed values, one a row, and the purpose each row's
// value is bound to: what re-sealing after a key rotation needs to know.
type Column struct {
	Table, IDColumn, Column string
	Purpose                 func(id int64) string
}

// SealedKeyID returns the key id a sealed value names, so a rotation job can find values
// still sealed with an old key.
func SealedKeyID(sealed string) string {
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 {
		return ""
	}
	return parts[1]
}

// Derive returns a 32-byte subkey of the current master key for a named use (HKDF-SHA256),
// so one master key can also give the JWT and audit signing keys when they are not
// configured separately.
func (k *Keyring) Derive(label string) []byte {
	out, err := hkdf.Key(sha256.New, k.currentKey, nil, "archipelago/"+label, KeySize)
	if err != nil {
		panic(err) // only for impossible lengths
	}
	return out
}
