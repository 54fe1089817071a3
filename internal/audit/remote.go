package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ActorView is an actor as the API shows it.
type ActorView struct {
	Kind ActorKind `json:"kind"`
	ID   string    `json:"id"`
	Name string    `json:"name"`
}

// EntryView is an entry as the API shows it, with its leaf so a member can check it
// against a checkpoint without trusting the server's rendering.
type EntryView struct {
	Seq        int64           `json:"seq"`
	At         time.Time       `json:"at"`
	Actor      ActorView       `json:"actor"`
	MemberID   *int64          `json:"member_id"`
	Action     string          `json:"action"`
	TargetType string          `json:"target_type"`
	TargetID   string          `json:"target_id"`
	RequestID  string          `json:"request_id"`
	SourceIP   string          `json:"source_ip"`
	Details    json.RawMessage `json:"details"`
	Leaf       []byte          `json:"leaf"`      // LogEntry.Leaf, base64 in JSON
	LeafHash   tlog.Hash       `json:"leaf_hash"` // SHA-256(0x00 ‖ leaf), base64 in JSON
}

// View is the entry as the API shows it.
func (e *LogEntry) View() EntryView {
	leaf := e.Leaf()
	return EntryView{Seq: e.Seq, At: e.At.UTC(), Actor: ActorView(e.Actor), MemberID: e.MemberID, Action: e.Action,
		TargetType: e.TargetType, TargetID: e.TargetID, RequestID: e.RequestID, SourceIP: e.SourceIP, Details: e.Details,
		Leaf: leaf, LeafHash: tlog.RecordHash(leaf)}
}

// CheckView checks that a shown entry says what its leaf says, and returns the leaf hash
// to check against a checkpoint.
func CheckView(v EntryView) (tlog.Hash, error) {
	e, err := DecodeLeaf(v.Leaf)
	if err != nil {
		return tlog.Hash{}, err
	}
	var a, b any
	if json.Unmarshal(e.Details, &a) != nil || json.Unmarshal(v.Details, &b) != nil || !reflect.DeepEqual(a, b) {
		return tlog.Hash{}, fmt.Errorf("its details differ from its leaf")
	}
	same := e.Seq == v.Seq && e.At.Equal(v.At) && ActorView(e.Actor) == v.Actor && e.Action == v.Action &&
		e.TargetType == v.TargetType && e.TargetID == v.TargetID && e.RequestID == v.RequestID && e.SourceIP == v.SourceIP &&
		((e.MemberID == nil) == (v.MemberID == nil)) && (e.MemberID == nil || *e.MemberID == *v.MemberID)
	if !same {
		return tlog.Hash{}, fmt.Errorf("the fields shown differ from its leaf")
	}
	h := tlog.RecordHash(v.Leaf)
	if h != v.LeafHash {
		return tlog.Hash{}, fmt.Errorf("its leaf hash is not the hash of its leaf")
	}
	return h, nil
}

// ProofView is an inclusion proof as the API shows it.
type ProofView struct {
	Seq      int64       `json:"seq"`
	TreeSize int64       `json:"tree_size"`
	LeafHash tlog.Hash   `json:"leaf_hash"`
	Proof    []tlog.Hash `json:"proof"`
}

// ConsistencyView is a consistency proof as the API shows it.
type ConsistencyView struct {
	From  int64       `json:"from"`
	To    int64       `json:"to"`
	Proof []tlog.Hash `json:"proof"`
}

// RemoteOptions configure VerifyRemote.
type RemoteOptions struct {
	BaseURL string // the Archipelago's public URL
	// Saved is a checkpoint the member kept earlier (the note, as served).
	Saved []byte
	// VerifierKey is the log's public key ("name+hash+base64"); when empty it is fetched
	// from the server and accepted only if it verifies the saved checkpoint.
	VerifierKey string
	// Token, when set, also checks every entry the member can see against today's
	// checkpoint (an API token or access token).
	Token  string
	Client *http.Client
}

// RemoteReport is the outcome of VerifyRemote.
type RemoteReport struct {
	VerifierKey    string
	Saved, Current Checkpoint
	EntriesChecked int
	Problems       []Problem
	// WrongKey, when set, says the saved checkpoint is signed with another key than the
	// one given (or served): a mix-up of keys, not evidence of tampering.
	WrongKey string
}

// OK reports whether the check passed.
func (r *RemoteReport) OK() bool { return len(r.Problems) == 0 }

// VerifyRemote checks, through the API alone, that today's checkpoint is validly signed and
// that the log the saved checkpoint describes is a prefix of today's log (no entry it
// covered was rewritten or removed, no fork). With a token it also checks that every entry
// the member can see is what today's tree holds.
func VerifyRemote(ctx context.Context, o RemoteOptions) (*RemoteReport, error) {
	c := remoteClient{base: strings.TrimRight(o.BaseURL, "/"), token: o.Token, http: o.Client}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	rep := &RemoteReport{VerifierKey: strings.TrimSpace(o.VerifierKey)}
	if rep.VerifierKey == "" {
		k, err := c.get(ctx, "/v1/audit/key", nil, false)
		if err != nil {
			return nil, err
		}
		rep.VerifierKey = strings.TrimSpace(string(k))
	}
	v, err := note.NewVerifier(rep.VerifierKey)
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	if rep.Saved, err = OpenCheckpoint(o.Saved, v); err != nil {
		var se *SignatureError
		if errors.As(err, &se) && se.WrongKey() {
			from := "given"
			if o.VerifierKey == "" {
				from = "the server serves"
			}
			_, hash, _, _ := splitVerifierKey(rep.VerifierKey)
			rep.WrongKey = fmt.Sprintf("wrong key: the saved checkpoint is signed with %s, but the key %s is %s+%s; pass the key you kept "+
				"with the checkpoint (--key); this alone says nothing about whether the log was altered", strings.Join(se.OtherKeys, ", "), from, v.Name(), hash)
			rep.Problems = append(rep.Problems, Problem{Seq: -1, Message: rep.WrongKey})
			return rep, nil
		}
		rep.Problems = append(rep.Problems, Problem{Seq: -1, Message: "the saved checkpoint is " + err.Error()})
		return rep, nil
	}
	cur, err := c.get(ctx, "/v1/audit/checkpoint", nil, false)
	if refused := serverRefusal(err); refused != "" {
		rep.Problems = append(rep.Problems, Problem{Seq: -1, Message: "the server refuses to sign a checkpoint: " + refused})
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	if rep.Current, err = OpenCheckpoint(cur, v); err != nil {
		rep.Problems = append(rep.Problems, Problem{Seq: -1, Message: "today's checkpoint " + err.Error()})
		return rep, nil
	}
	old, now := rep.Saved, rep.Current
	switch {
	case now.Size < old.Size:
		rep.Problems = append(rep.Problems, Problem{Seq: now.Size, Until: old.Size,
			Message: fmt.Sprintf("missing: today's log has %d entries but the saved checkpoint covered %d (truncated)", now.Size, old.Size)})
		return rep, nil
	case now.Size == old.Size:
		if now.Root != old.Root {
			rep.Problems = append(rep.Problems, Problem{Seq: -1, Message: fmt.Sprintf("fork: two checkpoints of size %d with different roots", now.Size)})
			return rep, nil
		}
	case old.Size > 0:
		var cv ConsistencyView
		err := c.getJSON(ctx, "/v1/audit/consistency", url.Values{"from": {itoa(old.Size)}, "to": {itoa(now.Size)}}, false, &cv)
		if refused := serverRefusal(err); refused != "" {
			rep.Problems = append(rep.Problems, Problem{Seq: 0, Until: old.Size,
				Message: fmt.Sprintf("the server cannot prove that the log the saved checkpoint describes (%d entries) is a prefix of today's: %s", old.Size, refused)})
			return rep, nil
		}
		if err != nil {
			return nil, err
		}
		if err := tlog.CheckTree(tlog.TreeProof(cv.Proof), now.Size, now.Root, old.Size, old.Root); err != nil {
			rep.Problems = append(rep.Problems, Problem{Seq: 0, Until: old.Size,
				Message: fmt.Sprintf("the log the saved checkpoint describes (%d entries) is not a prefix of today's (%d entries): rewritten or forked", old.Size, now.Size)})
			return rep, nil
		}
	}
	if o.Token == "" {
		return rep, nil
	}
	// Every entry the member can see must be in today's tree as shown.
	// Pages follow next_cursor (an older server answered next_before, taken as before=).
	q := url.Values{"limit": {"500"}}
	for {
		var page struct {
			Entries    []EntryView `json:"entries"`
			NextCursor *string     `json:"next_cursor"`
			NextBefore *int64      `json:"next_before"`
		}
		if err := c.getJSON(ctx, "/v1/audit/entries", q, true, &page); err != nil {
			return nil, err
		}
		for _, e := range page.Entries {
			if e.Seq >= now.Size {
				continue // newer than today's checkpoint
			}
			h, err := CheckView(e)
			if err != nil {
				rep.Problems = append(rep.Problems, Problem{Seq: e.Seq, Message: err.Error()})
				continue
			}
			var pv ProofView
			err = c.getJSON(ctx, "/v1/audit/entries/"+itoa(e.Seq)+"/proof", url.Values{"tree_size": {itoa(now.Size)}}, false, &pv)
			if refused := serverRefusal(err); refused != "" {
				rep.Problems = append(rep.Problems, Problem{Seq: e.Seq, Message: "the server cannot prove it is in today's tree: " + refused})
				continue
			}
			if err != nil {
				return nil, err
			}
			if err := tlog.CheckRecord(tlog.RecordProof(pv.Proof), now.Size, now.Root, e.Seq, h); err != nil {
				rep.Problems = append(rep.Problems, Problem{Seq: e.Seq, Message: "is not in today's signed tree as shown: rewritten"})
				continue
			}
			rep.EntriesChecked++
		}
		switch {
		case page.NextCursor != nil && *page.NextCursor != "":
			q = url.Values{"limit": {"500"}, "cursor": {*page.NextCursor}}
			continue
		case page.NextBefore != nil && *page.NextBefore > 0:
			q = url.Values{"limit": {"500"}, "before": {itoa(*page.NextBefore)}}
			continue
		}
		break
	}
	// Report the oldest problem first.
	for i, j := 0, len(rep.Problems)-1; i < j; i, j = i+1, j-1 {
		rep.Problems[i], rep.Problems[j] = rep.Problems[j], rep.Problems[i]
	}
	return rep, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

type remoteClient struct {
	base, token string
	http        *http.Client
}

func (c remoteClient) get(ctx context.Context, path string, q url.Values, auth bool) ([]byte, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &httpError{path: path, status: resp.StatusCode, text: resp.Status, body: string(bytes.TrimSpace(body))}
		var shape struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(body, &shape) == nil {
			e.code, e.message = shape.Error.Code, shape.Error.Message
		}
		return nil, e
	}
	return body, nil
}

// httpError is an answer of the server other than 200.
type httpError struct {
	path          string
	status        int
	text, body    string
	code, message string // the API's error shape, when it is one
}

func (e *httpError) Error() string { return fmt.Sprintf("GET %s: %s: %s", e.path, e.text, e.body) }

// serverRefusal returns the server's reason when err is its refusal to vouch for a log
// that does not extend its checkpoints (409 audit_log_inconsistent): a finding, not a
// failure to check.
func serverRefusal(err error) string {
	var he *httpError
	if errors.As(err, &he) && he.status == http.StatusConflict && he.code == "audit_log_inconsistent" {
		return he.message
	}
	return ""
}

func (c remoteClient) getJSON(ctx context.Context, path string, q url.Values, auth bool, v any) error {
	b, err := c.get(ctx, path, q, auth)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
