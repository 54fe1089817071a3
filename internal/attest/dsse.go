package attest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The formats: an in-toto Statement v1 (https://github.com/in-toto/attestation, spec/v1)
// signed in a DSSE envelope (https://github.com/secure-systems-lab/dsse, protocol.md).
const (
	// StatementType is the in-toto Statement v1 _type.
	StatementType = "https://in-toto.io/Statement/v1"
	// PayloadType is the DSSE payloadType of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// PredicateType names Archipelago's predicate: a member's agent run.
	PredicateType = "https://archipelago.chatons.org/attestations/agent-run/v1"
	// SubjectPrefix starts the subject's name; the repository id follows.
	SubjectPrefix = "archipelago:repository/"
)

// Envelope is a DSSE envelope (JSON serialisation).
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"` // standard base64 of the statement
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // standard base64 of the Ed25519 signature of PAE(payloadType, payload)
}

// Statement is an in-toto Statement v1 with Archipelago's predicate.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

// Subject is an in-toto resource descriptor: the repository, with the snapshot the run
// looked at as its digest (a restic snapshot id is the SHA-256 of the snapshot's file).
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Predicate is what the agent ran and found.
type Predicate struct {
	RepositoryID int64     `json:"repository_id"`
	SnapshotID   string    `json:"snapshot_id"`
	SnapshotTime time.Time `json:"snapshot_time,omitzero"`
	StartedAt    time.Time `json:"started_at"`
	FinishedAt   time.Time `json:"finished_at"`
	Status       string    `json:"status"` // passed, warning, failed or error
	Reason       string    `json:"reason"`
	CheckSubset  string    `json:"check_subset"`
	Levels       []Level   `json:"levels"`
	AgentVersion string    `json:"agent_version"`
	// Nonce makes every statement unique, even two runs finishing in the same instant.
	Nonce string `json:"nonce"`
}

// Level is one level's outcome and figures.
type Level struct {
	Level      string         `json:"level"`
	Outcome    string         `json:"outcome"`
	Summary    string         `json:"summary"`
	DurationMS int64          `json:"duration_ms"`
	Figures    map[string]any `json:"figures,omitempty"`
}

// PAE is DSSE's pre-authentication encoding: what is signed.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// KeyID is the DSSE keyid of a public key: hex SHA-256 of its SubjectPublicKeyInfo (DER),
// what `openssl pkey -pubin -outform DER | sha256sum` prints.
func KeyID(pub ed25519.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// Sign wraps the statement in a DSSE envelope signed with key.
func Sign(st Statement, key ed25519.PrivateKey) (Envelope, []byte, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return Envelope{}, nil, fmt.Errorf("encode statement: %w", err)
	}
	sig := ed25519.Sign(key, PAE(PayloadType, payload))
	env := Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(payload),
		Signatures: []Signature{{KeyID: KeyID(key.Public().(ed25519.PublicKey)), Sig: base64.StdEncoding.EncodeToString(sig)}}}
	return env, payload, nil
}

// GenerateKey returns a new key pair as PEM: PKCS#8 private key, SubjectPublicKeyInfo
// public key (both readable by openssl).
func GenerateKey() (privPEM, pubPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), nil
}

// ParsePrivateKey reads a PKCS#8 PEM Ed25519 private key.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM private key (-----BEGIN PRIVATE KEY-----)")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 key")
	}
	return priv, nil
}

// ParsePublicKey reads an Ed25519 public key: PEM (SubjectPublicKeyInfo), or the standard
// base64 of its 32 raw bytes.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	if blk, _ := pem.Decode([]byte(s)); blk != nil {
		if blk.Type != "PUBLIC KEY" {
			return nil, errors.New("a PEM public key starts with -----BEGIN PUBLIC KEY-----")
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, err
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, errors.New("not an Ed25519 key")
		}
		return pub, nil
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace([]byte(s))))
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errors.New("not an Ed25519 public key: give the PEM that `archipelago agent keygen` printed")
	}
	return ed25519.PublicKey(raw), nil
}

// PublicPEM encodes a public key as PEM.
func PublicPEM(pub ed25519.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
