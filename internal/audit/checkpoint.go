package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Keys sign and verify checkpoints.
type Keys struct {
	Signer   note.Signer
	Verifier note.Verifier
	// VerifierKey is the public key in note's text form ("name+hash+base64"), for members
	// to keep.
	VerifierKey string
}

// Name is the key's name, which is also the log's origin (the first line of checkpoints).
func (k Keys) Name() string { return k.Signer.Name() }

// KeysFromPrivate reads a note signer key ("PRIVATE+KEY+name+hash+base64", as made by
// note.GenerateKey) — the form of ARCHIPELAGO_AUDIT_SIGNING_KEY.
func KeysFromPrivate(skey string) (Keys, error) {
	skey = strings.TrimSpace(skey)
	signer, err := note.NewSigner(skey)
	if err != nil {
		return Keys{}, fmt.Errorf("not a note signer key (PRIVATE+KEY+name+hash+base64): %w", err)
	}
	parts := strings.SplitN(skey, "+", 5)
	raw, _ := base64.StdEncoding.DecodeString(parts[4]) // checked by NewSigner
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(signer.Name(), pub)
	if err != nil {
		return Keys{}, err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return Keys{}, err
	}
	return Keys{Signer: signer, Verifier: verifier, VerifierKey: vkey}, nil
}

// KeysFromSeed builds Ed25519 checkpoint keys named name from a 32-byte seed (the master
// key's derivation "audit-checkpoint" when no signing key is configured).
func KeysFromSeed(name string, seed []byte) (Keys, error) {
	skey, err := signerKeyFromSeed(name, seed)
	if err != nil {
		return Keys{}, err
	}
	return KeysFromPrivate(skey)
}

// signerKeyFromSeed encodes an Ed25519 seed as a note signer key named name.
func signerKeyFromSeed(name string, seed []byte) (string, error) {
	if len(seed) != ed25519.SeedSize {
		return "", fmt.Errorf("an Ed25519 seed has %d bytes, not %d", ed25519.SeedSize, len(seed))
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	const algEd25519 = 1
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write(append([]byte{algEd25519}, pub...))
	hash := binary.BigEndian.Uint32(h.Sum(nil))
	return fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, hash, base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, seed...))), nil
}

// KeyName is the checkpoint key name (and log origin) for a public URL:
// "<host>/archipelago-audit".
func KeyName(publicURL string) string {
	host := publicURL
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host, _, _ = strings.Cut(host, "/")
	host = strings.NewReplacer("+", "-", " ", "-").Replace(host)
	if host == "" {
		host = "localhost"
	}
	return host + "/archipelago-audit"
}

// Checkpoint is a signed tree head.
type Checkpoint struct {
	Origin    string
	Size      int64
	Root      tlog.Hash
	Note      []byte // the signed note, as served and as members keep it
	CreatedAt time.Time
}

// ErrBadCheckpoint means a note is not a checkpoint validly signed by the log's key.
var ErrBadCheckpoint = errors.New("not a validly signed checkpoint of this log")

// checkpointText formats a checkpoint body (C2SP tlog-checkpoint): origin, tree size and
// base64 root hash, one a line.
func checkpointText(origin string, size int64, root tlog.Hash) string {
	return fmt.Sprintf("%s\n%d\n%s\n", origin, size, root)
}

// SignCheckpoint signs the tree head (size, root) with k.
func SignCheckpoint(k Keys, size int64, root tlog.Hash) ([]byte, error) {
	return note.Sign(&note.Note{Text: checkpointText(k.Name(), size, root)}, k.Signer)
}

// OpenCheckpoint checks a signed checkpoint note against the verifier and parses it.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	c, err := parseCheckpointText(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("%w: origin %q is not the key's name %q", ErrBadCheckpoint, c.Origin, v.Name())
	}
	c.Note = bytes.Clone(msg)
	return c, nil
}

func parseCheckpointText(text string) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return Checkpoint{}, fmt.Errorf("%w: the text has fewer than three lines", ErrBadCheckpoint)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: bad tree size %q", ErrBadCheckpoint, lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: bad root hash", ErrBadCheckpoint)
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// LoadKeys returns the checkpoint keys: the configured note signer key
// (ARCHIPELAGO_AUDIT_SIGNING_KEY) when set, else an Ed25519 key whose seed is derived from
// the master key (derive("audit-checkpoint")), named after the public URL.
func LoadKeys(configured string, derive func(label string) []byte, publicURL string) (Keys, error) {
	skey, err := SignerKey(configured, derive, publicURL)
	if err != nil {
		return Keys{}, err
	}
	return KeysFromPrivate(skey)
}

// SignerKey is the private note signer key LoadKeys uses (a secret): what an operator pins
// as ARCHIPELAGO_AUDIT_SIGNING_KEY before rotating a master key the key is derived from,
// so that the log keeps its key (`archipelago audit key --private`).
func SignerKey(configured string, derive func(label string) []byte, publicURL string) (string, error) {
	if s := strings.TrimSpace(configured); s != "" {
		return s, nil
	}
	return signerKeyFromSeed(KeyName(publicURL), derive("audit-checkpoint"))
}
