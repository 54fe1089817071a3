package audit

import (
	"bytes"
	"crypto/sha256"
	"math/bits"
	"runtime"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Verify recomputes the tree a batch of entries at a time. Batches are aligned in the tree
// (batch k holds the entries at positions [k·leafBatch, (k+1)·leafBatch)), so every interior
// node below level leafBatchBits lies inside one batch: a batch's leaf hashes and all of
// its interior nodes are computed, and compared with the hashes stored with its entries, in
// parallel and independently of the other batches (hashBatch). In order, only what spans
// batches is left: the frontier of the tree built so far (at most one subtree per level)
// and, for a full batch, the nodes above level leafBatchBits its last entry closes
// (frontier.push), and the root at the size of each checkpoint. Each hash is computed once;
// memory is a few batches, whatever the size of the log.
const (
	leafBatchBits = 13
	leafBatch     = 1 << leafBatchBits
	// chunkBits sizes the aligned chunks of a batch the goroutines of hashBatch share.
	chunkBits = 10
	chunk     = 1 << chunkBits
)

// verdict is what hashBatch found of an entry's stored hashes, in the order Verify reports
// them: at most one of leafBad, malformed, altered.
type verdict struct {
	leafBad   bool  // the stored leaf hash differs from the entry's
	malformed bool  // the stored hashes have the wrong length for the entry's position
	altered   uint8 // the lowest level (≥ 1) whose stored node differs; 0: none found
	// upper is set on the last entry of a full batch whose nodes above leafBatchBits are
	// still to be checked (by the frontier, in order).
	upper bool
}

// leafBuf is a batch of entries in the pipeline: filled by the caller, hashed and checked
// by send.
type leafBuf struct {
	first   int64 // the tree position of entries[0], a multiple of leafBatch
	entries []LogEntry
	stored  [][]byte // the tree hashes stored with each entry; empty: nothing to check
	// levels[l][j] is the hash of the subtree of 2^l leaves starting at entry j·2^l of
	// the batch, for every such subtree the batch holds entirely; levels[0] are the leaf
	// hashes.
	levels   [leafBatchBits + 1][]tlog.Hash
	verdicts []verdict
}

func newLeafBuf() *leafBuf {
	b := &leafBuf{entries: make([]LogEntry, 0, leafBatch), stored: make([][]byte, 0, leafBatch), verdicts: make([]verdict, leafBatch)}
	for l := range b.levels {
		b.levels[l] = make([]tlog.Hash, leafBatch>>l)
	}
	return b
}

// storedCount is how many hashes the append of the entry at position n stores: its leaf
// hash and one node per trailing 1 bit of n.
func storedCount(n int64) int { return 1 + bits.TrailingZeros64(^uint64(n)) }

// hashBatch computes b's leaf hashes and interior nodes and checks them against the stored
// hashes, spreading aligned chunks over GOMAXPROCS goroutines.
func hashBatch(b *leafBuf) {
	m := len(b.entries)
	chunks := (m + chunk - 1) / chunk
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		for c := range chunks {
			b.hashChunk(c * chunk)
		}
	} else {
		var wg sync.WaitGroup
		for w := 1; w < workers; w++ {
			wg.Go(func() {
				for c := w; c < chunks; c += workers {
					b.hashChunk(c * chunk)
				}
			})
		}
		for c := 0; c < chunks; c += workers {
			b.hashChunk(c * chunk)
		}
		wg.Wait()
	}
	// The levels above the chunks: a few nodes per batch.
	for l := chunkBits + 1; l <= leafBatchBits; l++ {
		below, here := b.levels[l-1], b.levels[l]
		for j := range m >> l {
			here[j] = tlog.NodeHash(below[2*j], below[2*j+1])
		}
	}
	for i := chunk - 1; i < m; i += chunk {
		b.check(i, chunkBits+1, leafBatchBits)
	}
}

// hashChunk hashes the leaves of the chunk starting at entry lo and the nodes within it,
// and checks its entries' stored hashes up to level chunkBits.
func (b *leafBuf) hashChunk(lo int) {
	hi := min(lo+chunk, len(b.entries))
	var h leafHasher
	for i := lo; i < hi; i++ {
		b.levels[0][i] = h.hash(&b.entries[i])
	}
	for l := 1; l <= chunkBits; l++ {
		below, here := b.levels[l-1], b.levels[l]
		for j := lo >> l; j < hi>>l; j++ {
			here[j] = tlog.NodeHash(below[2*j], below[2*j+1])
		}
	}
	for i := lo; i < hi; i++ {
		b.verdicts[i] = verdict{}
		if len(b.stored) == 0 {
			continue
		}
		st, lh := b.stored[i], b.levels[0][i]
		switch n := b.first + int64(i); {
		case len(st) >= tlog.HashSize && !bytes.Equal(st[:tlog.HashSize], lh[:]):
			b.verdicts[i].leafBad = true
		case len(st) != storedCount(n)*tlog.HashSize:
			b.verdicts[i].malformed = true
		default:
			b.check(i, 1, chunkBits)
		}
	}
}

// check compares the stored nodes of levels [from, to] of entry i with the computed ones,
// when the entry's stored hashes are well formed and none below from differed. It marks
// the entry upper when it closes nodes above to that are to be checked later.
func (b *leafBuf) check(i, from, to int) {
	v := &b.verdicts[i]
	if len(b.stored) == 0 || v.leafBad || v.malformed || v.altered != 0 {
		return
	}
	st, n := b.stored[i], b.first+int64(i)
	top := storedCount(n) - 1 // the entry's highest level
	for l := from; l <= min(top, to); l++ {
		node := b.levels[l][(i+1)>>l-1]
		if !bytes.Equal(st[l*tlog.HashSize:(l+1)*tlog.HashSize], node[:]) {
			v.altered = uint8(l)
			return
		}
	}
	v.upper = top > to
}

// subtree is a perfect subtree of the tree: its level (it has 2^level leaves) and hash.
type subtree struct {
	level int
	hash  tlog.Hash
}

// frontier is the tree built so far as its perfect subtrees, largest (leftmost) first: one
// per 1 bit of its size.
type frontier struct {
	n     int64
	trees []subtree
	above []tlog.Hash // scratch: the nodes push closes
}

// root is the tree's root hash with the batch's first k leaves added (k ≤ len), as
// tlog.TreeHash computes it: the subtrees folded from the right.
func (f *frontier) root(b *leafBuf, k int) tlog.Hash {
	if f.n+int64(k) == 0 {
		h, _ := tlog.TreeHash(0, nil)
		return h
	}
	var (
		h    tlog.Hash
		have bool
	)
	add := func(left tlog.Hash) {
		if have {
			h = tlog.NodeHash(left, h)
		} else {
			h, have = left, true
		}
	}
	// The batch's part: its complete aligned subtrees covering [0, k), right to left.
	for l, end := 0, k; end > 0; l++ {
		if end&(1<<l) != 0 {
			add(b.levels[l][(end>>l)-1])
			end -= 1 << l
		}
	}
	for i := len(f.trees) - 1; i >= 0; i-- {
		add(f.trees[i].hash)
	}
	return h
}

// push adds the batch's leaves. For a full batch it returns the nodes above leafBatchBits
// its last entry closes (level leafBatchBits+1 first); a batch that is not full must be
// the last.
func (f *frontier) push(b *leafBuf) []tlog.Hash {
	m := len(b.entries)
	f.above = f.above[:0]
	if m == leafBatch {
		s := subtree{level: leafBatchBits, hash: b.levels[leafBatchBits][0]}
		for len(f.trees) > 0 && f.trees[len(f.trees)-1].level == s.level {
			left := f.trees[len(f.trees)-1]
			f.trees = f.trees[:len(f.trees)-1]
			s = subtree{level: s.level + 1, hash: tlog.NodeHash(left.hash, s.hash)}
			f.above = append(f.above, s.hash)
		}
		f.trees = append(f.trees, s)
	} else {
		off := 0
		for l := leafBatchBits - 1; l >= 0; l-- {
			if m&(1<<l) != 0 {
				f.trees = append(f.trees, subtree{level: l, hash: b.levels[l][off>>l]})
				off += 1 << l
			}
		}
	}
	f.n += int64(m)
	return f.above
}

// leafHasher computes leaf hashes reusing one buffer (Verify hashes millions).
type leafHasher struct{ buf []byte }

func (h *leafHasher) hash(e *LogEntry) tlog.Hash {
	h.buf = e.appendLeaf(append(h.buf[:0], 0x00)) // RFC 6962 leaf prefix
	return sha256.Sum256(h.buf)
}

// leafPipeline overlaps reading entries with hashing them: while the caller fills batch
// k+1, batch k's hashes are computed (in parallel) and the batch is then handed, in order,
// to consume on the pipeline's goroutine.
//
//	p := startLeafPipeline(consume)
//	b := p.next(); b.entries = append(b.entries, …); p.send(b) // as often as needed
//	err := p.wait() // always: it ends the goroutine
type leafPipeline struct {
	free, full chan *leafBuf
	done       chan error
	first      int64
}

// leafBuffers is how many batches are in flight: one being consumed, one being filled, one
// spare so that neither side waits for the other's last step.
const leafBuffers = 3

// startLeafPipeline starts the goroutine calling consume for every batch sent, in order.
// After consume fails, later batches are dropped and wait returns its error.
func startLeafPipeline(consume func(*leafBuf) error) *leafPipeline {
	p := &leafPipeline{free: make(chan *leafBuf, leafBuffers), full: make(chan *leafBuf, leafBuffers), done: make(chan error, 1)}
	for range leafBuffers {
		p.free <- newLeafBuf()
	}
	go func() {
		var err error
		for b := range p.full {
			if err == nil {
				err = consume(b)
			}
			b.entries, b.stored = b.entries[:0], b.stored[:0]
			p.free <- b
		}
		p.done <- err
	}()
	return p
}

// next returns an empty batch to fill with leafBatch entries (fewer only in the last).
func (p *leafPipeline) next() *leafBuf { return <-p.free }

// send hashes and checks the batch and queues it for consume.
func (p *leafPipeline) send(b *leafBuf) {
	b.first = p.first
	p.first += int64(len(b.entries))
	hashBatch(b)
	p.full <- b
}

// wait waits for every batch sent to be consumed and returns consume's first error.
func (p *leafPipeline) wait() error {
	close(p.full)
	return <-p.done
}
