package audit

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// LogEntry is an entry as stored in the log.
type LogEntry struct {
	Seq        int64
	At         time.Time
	Actor      Actor
	MemberID   *int64 // nil: a federation-level entry, visible to every member
	Action     string
	TargetType string
	TargetID   string
	RequestID  string
	SourceIP   string
	// Details is the JSON object exactly as stored (a json column keeps it byte for byte):
	// the form the leaf covers.
	Details json.RawMessage
}

// LeafVersion starts every leaf; a new encoding gets a new version.
const LeafVersion = "archipelago-audit-leaf/v1\n"

// leafFields is the number of length-prefixed fields after the version line.
const leafFields = 12

// Leaf is the canonical byte encoding of the entry, the Merkle tree's leaf: the version
// line, then 12 fields, each an unsigned varint length followed by that many bytes, in this
// order: seq (decimal), time (microseconds since the Unix epoch, decimal), actor kind, actor
// id, actor name, member id (decimal, empty for a federation-level entry), action, target
// type, target id, request id, source address, details (the JSON object as stored).
// Every stored column is covered, so editing any of them changes the leaf.
func (e *LogEntry) Leaf() []byte {
	return e.appendLeaf(make([]byte, 0, 160+len(e.Details)+len(e.Actor.Name)))
}

// appendLeaf appends the leaf to b.
func (e *LogEntry) appendLeaf(b []byte) []byte {
	b = append(b, LeafVersion...)
	var num [20]byte
	b = appendField(b, strconv.AppendInt(num[:0], e.Seq, 10))
	return e.appendLeafTail(b)
}

// appendLeafTail appends the leaf's fields after seq.
func (e *LogEntry) appendLeafTail(b []byte) []byte {
	var num [20]byte
	b = appendField(b, strconv.AppendInt(num[:0], e.At.UnixMicro(), 10))
	return e.appendLeafRest(b)
}

// appendLeafRest appends the leaf's fields after the time: what Record knows before it
// takes the append lock. The append statement (appendSQL) puts the seq and the time it
// assigns before them.
func (e *LogEntry) appendLeafRest(b []byte) []byte {
	var num [20]byte
	b = appendField(b, e.Actor.Kind)
	b = appendField(b, e.Actor.ID)
	b = appendField(b, e.Actor.Name)
	if e.MemberID != nil {
		b = appendField(b, strconv.AppendInt(num[:0], *e.MemberID, 10))
	} else {
		b = appendField(b, "")
	}
	b = appendField(b, e.Action)
	b = appendField(b, e.TargetType)
	b = appendField(b, e.TargetID)
	b = appendField(b, e.RequestID)
	b = appendField(b, e.SourceIP)
	return appendField(b, e.Details)
}

// appendField appends one field of a leaf: its length as an unsigned varint, then its bytes.
func appendField[S ~string | ~[]byte](b []byte, s S) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// LeafHash is the entry's leaf hash in the tree (RFC 6962: SHA-256 of 0x00 and the leaf).
func (e *LogEntry) LeafHash() tlog.Hash { return tlog.RecordHash(e.Leaf()) }

// ErrBadLeaf means bytes are not a leaf of this log.
var ErrBadLeaf = errors.New("audit: not a valid leaf encoding")

// DecodeLeaf parses a leaf back into the entry it encodes, so a member holding a leaf (and
// its inclusion proof) can read what it says without trusting the server's rendering.
func DecodeLeaf(leaf []byte) (LogEntry, error) {
	if len(leaf) < len(LeafVersion) || string(leaf[:len(LeafVersion)]) != LeafVersion {
		return LogEntry{}, fmt.Errorf("%w: unknown version", ErrBadLeaf)
	}
	rest := leaf[len(LeafVersion):]
	var f [leafFields]string
	for i := range f {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return LogEntry{}, fmt.Errorf("%w: field %d is truncated", ErrBadLeaf, i)
		}
		f[i] = string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 {
		return LogEntry{}, fmt.Errorf("%w: %d trailing bytes", ErrBadLeaf, len(rest))
	}
	seq, err1 := strconv.ParseInt(f[0], 10, 64)
	micros, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return LogEntry{}, fmt.Errorf("%w: %v", ErrBadLeaf, err)
	}
	e := LogEntry{Seq: seq, At: time.UnixMicro(micros).UTC(), Actor: Actor{Kind: ActorKind(f[2]), ID: f[3], Name: f[4]},
		Action: f[6], TargetType: f[7], TargetID: f[8], RequestID: f[9], SourceIP: f[10], Details: json.RawMessage(f[11])}
	if f[5] != "" {
		m, err := strconv.ParseInt(f[5], 10, 64)
		if err != nil {
			return LogEntry{}, fmt.Errorf("%w: member id: %v", ErrBadLeaf, err)
		}
		e.MemberID = &m
	}
	return e, nil
}
