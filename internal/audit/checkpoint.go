package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	// Former verify what the same key signed under the log's former names (before the
	// name was stored, it followed ARCHIPELAGO_PUBLIC_URL; migration 010 kept those names).
	Former []note.Verifier
}

// Name is the key's name, which is also the log's origin (the first line of checkpoints).
func (k Keys) Name() string { return k.Signer.Name() }

// Open checks a checkpoint signed by this key under the log's name or a former one.
func (k Keys) Open(msg []byte) (Checkpoint, error) {
	return openCheckpoint(msg, note.VerifierList(append([]note.Verifier{k.Verifier}, k.Former...)...))
}

// withFormerNames adds verifiers of the same public key under each name that is not the
// key's own.
func (k Keys) withFormerNames(names []string) (Keys, error) {
	_, _, b64, ok := splitVerifierKey(k.VerifierKey)
	if !ok {
		return Keys{}, fmt.Errorf("malformed verifier key %q", k.VerifierKey)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return Keys{}, fmt.Errorf("verifier key %q is not an Ed25519 key", k.VerifierKey)
	}
	k.Former = nil
	for _, n := range names {
		if n == k.Name() {
			continue
		}
		vkey, err := note.NewEd25519VerifierKey(n, ed25519.PublicKey(raw[1:]))
		if err != nil {
			return Keys{}, fmt.Errorf("former name %q: %w", n, err)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return Keys{}, err
		}
		k.Former = append(k.Former, v)
	}
	return k, nil
}

// splitVerifierKey splits "name+hash+base64".
func splitVerifierKey(vkey string) (name, hash, b64 string, ok bool) {
	parts := strings.SplitN(strings.TrimSpace(vkey), "+", 3)
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

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
	return openCheckpoint(msg, note.VerifierList(v))
}

// SignatureError says why a note is not a checkpoint signed by the expected key, telling
// a wrong key (signed by another key: nothing says it was altered) from a forgery (a
// signature claiming the expected key that does not verify, or a malformed note).
type SignatureError struct {
	// OtherKeys are the "name+hash" of the keys the note is signed with instead, when it
	// carries no signature claiming the expected key.
	OtherKeys []string
	Err       error
}

func (e *SignatureError) Error() string {
	if len(e.OtherKeys) > 0 {
		return fmt.Sprintf("signed by another key (%s)", strings.Join(e.OtherKeys, ", "))
	}
	return "forged or altered: " + e.Err.Error()
}

// Unwrap makes a SignatureError an ErrBadCheckpoint.
func (e *SignatureError) Unwrap() error { return ErrBadCheckpoint }

// WrongKey reports whether the note is signed, but only by other keys.
func (e *SignatureError) WrongKey() bool { return len(e.OtherKeys) > 0 }

func openCheckpoint(msg []byte, vs note.Verifiers) (Checkpoint, error) {
	n, err := note.Open(msg, vs)
	var unverified *note.UnverifiedNoteError
	switch {
	case errors.As(err, &unverified):
		se := &SignatureError{Err: err}
		for _, sig := range unverified.Note.UnverifiedSigs {
			se.OtherKeys = append(se.OtherKeys, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
		}
		if len(se.OtherKeys) == 0 {
			se.Err = errors.New("no signature")
		}
		return Checkpoint{}, se
	case err != nil:
		return Checkpoint{}, &SignatureError{Err: err}
	}
	c, err := parseCheckpointText(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if len(n.Sigs) == 0 || c.Origin != n.Sigs[0].Name {
		return Checkpoint{}, &SignatureError{Err: fmt.Errorf("origin %q is not the signing key's name", c.Origin)}
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

// Querier is what reading the log's settings needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrNoName means the database holds no name for the log: it is not migrated.
var ErrNoName = errors.New("the database holds no audit log name (table audit_key_names): run `archipelago migrate up`")

// ErrBadSigningKey means the configured signing key (ARCHIPELAGO_AUDIT_SIGNING_KEY) is
// unusable.
var ErrBadSigningKey = errors.New("unusable audit signing key")

// logNames reads the log's stored name and its former names (migration 010).
func logNames(ctx context.Context, q Querier) (current string, all []string, err error) {
	rows, err := q.Query(ctx, `SELECT name, current FROM audit_key_names ORDER BY created_at, name`)
	if err != nil {
		return "", nil, fmt.Errorf("read the audit log's name: %w", err)
	}
	var (
		name string
		cur  bool
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &cur}, func() error {
		all = append(all, name)
		if cur {
			current = name
		}
		return nil
	})
	if err != nil {
		return "", nil, fmt.Errorf("read the audit log's name: %w", err)
	}
	if current == "" {
		return "", nil, ErrNoName
	}
	return current, all, nil
}

// LoadKeys returns the checkpoint keys: the configured note signer key
// (ARCHIPELAGO_AUDIT_SIGNING_KEY) when set, else an Ed25519 key whose seed is derived from
// the master key (derive("audit-checkpoint")), named with the log's name stored in the
// database. The name was chosen once, when the database was migrated, so every process
// (serve, worker, the CLI) signs and verifies with the same key without further settings,
// and a change of ARCHIPELAGO_PUBLIC_URL changes nothing. Checkpoints the same key signed
// under the log's former names still verify.
func LoadKeys(ctx context.Context, q Querier, configured string, derive func(label string) []byte) (Keys, error) {
	current, names, err := logNames(ctx, q)
	if err != nil {
		return Keys{}, err
	}
	skey, err := signerKey(current, configured, derive)
	if err != nil {
		return Keys{}, err
	}
	k, err := KeysFromPrivate(skey)
	if err != nil {
		return Keys{}, fmt.Errorf("%w: %w", ErrBadSigningKey, err)
	}
	return k.withFormerNames(names)
}

// SignerKey is the private note signer key LoadKeys uses (a secret): what an operator pins
// as ARCHIPELAGO_AUDIT_SIGNING_KEY before rotating a master key the key is derived from,
// so that the log keeps its key (`archipelago audit key --private`).
func SignerKey(ctx context.Context, q Querier, configured string, derive func(label string) []byte) (string, error) {
	current, _, err := logNames(ctx, q)
	if err != nil && strings.TrimSpace(configured) == "" {
		return "", err
	}
	return signerKey(current, configured, derive)
}

func signerKey(name, configured string, derive func(label string) []byte) (string, error) {
	if s := strings.TrimSpace(configured); s != "" {
		return s, nil
	}
	return signerKeyFromSeed(name, derive("audit-checkpoint"))
}
