// Command go_interop checks provmark's log artefacts with Go's reference packages
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog.
//
// It reads one JSON document on stdin, exits 0 when every check passes, and otherwise
// prints the first failure on stderr and exits 1. Byte strings are standard base64.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type inclusion struct {
	Leaf  []byte   `json:"leaf"`
	Index int64    `json:"index"`
	Size  int64    `json:"size"`
	Root  []byte   `json:"root"`
	Proof [][]byte `json:"proof"`
}

type consistency struct {
	OldSize int64    `json:"old_size"`
	NewSize int64    `json:"new_size"`
	OldRoot []byte   `json:"old_root"`
	NewRoot []byte   `json:"new_root"`
	Proof   [][]byte `json:"proof"`
}

type input struct {
	VerifierKeys  []string      `json:"verifier_keys"`
	Note          string        `json:"note"`
	Origin        string        `json:"origin"`
	ExpectSigners []string      `json:"expect_signers"`
	Leaves        [][]byte      `json:"leaves"` // optional: Go rebuilds the tree and its proofs
	Inclusion     []inclusion   `json:"inclusion"`
	Consistency   []consistency `json:"consistency"`
	SignerKey     string        `json:"signer_key"` // optional: Go signs and cosigns
	SignText      string        `json:"sign_text"`
}

type output struct {
	Checked    int    `json:"checked"`
	GoSigned   string `json:"go_signed,omitempty"`
	GoCosigned string `json:"go_cosigned,omitempty"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func toHash(b []byte) tlog.Hash {
	var h tlog.Hash
	if len(b) != tlog.HashSize {
		fail("hash has %d bytes, want %d", len(b), tlog.HashSize)
	}
	copy(h[:], b)
	return h
}

func toHashes(bs [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(bs))
	for i, b := range bs {
		out[i] = toHash(b)
	}
	return out
}

func main() {
	var in input
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		fail("bad input: %v", err)
	}
	out := output{}

	// Signed checkpoint.
	var verifiers []note.Verifier
	for _, k := range in.VerifierKeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			fail("note.NewVerifier(%q): %v", k, err)
		}
		verifiers = append(verifiers, v)
	}
	known := note.VerifierList(verifiers...)
	n, err := note.Open([]byte(in.Note), known)
	if err != nil {
		fail("note.Open: %v", err)
	}
	var signers []string
	for _, s := range n.Sigs {
		signers = append(signers, s.Name)
	}
	if !reflect.DeepEqual(signers, in.ExpectSigners) {
		fail("note.Open: verified signers %v, want %v", signers, in.ExpectSigners)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 || lines[0] != in.Origin {
		fail("checkpoint: bad origin line in %q", n.Text)
	}
	cpSize, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || strconv.FormatInt(cpSize, 10) != lines[1] {
		fail("checkpoint: bad size line %q", lines[1])
	}
	cpRoot, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("checkpoint: bad root line %q: %v", lines[2], err)
	}
	out.Checked++

	// Go's own tree over the raw entries, when given.
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			hs[i] = stored[x]
		}
		return hs, nil
	})
	for i, data := range in.Leaves {
		hs, err := tlog.StoredHashes(int64(i), data, reader)
		if err != nil {
			fail("tlog.StoredHashes: %v", err)
		}
		stored = append(stored, hs...)
	}
	haveTree := len(in.Leaves) > 0
	if haveTree {
		if cpSize > int64(len(in.Leaves)) {
			fail("checkpoint size %d > %d leaves", cpSize, len(in.Leaves))
		}
		th, err := tlog.TreeHash(cpSize, reader)
		if err != nil || th != cpRoot {
			fail("checkpoint: root %v differs from tlog.TreeHash %v (%v)", cpRoot, th, err)
		}
	}

	for i, c := range in.Inclusion {
		proof := tlog.RecordProof(toHashes(c.Proof))
		leaf, root := toHash(c.Leaf), toHash(c.Root)
		if err := tlog.CheckRecord(proof, c.Size, root, c.Index, leaf); err != nil {
			fail("inclusion[%d] (index %d, size %d): tlog.CheckRecord: %v", i, c.Index, c.Size, err)
		}
		if haveTree {
			if tlog.RecordHash(in.Leaves[c.Index]) != leaf {
				fail("inclusion[%d]: leaf hash differs from tlog.RecordHash", i)
			}
			want, err := tlog.ProveRecord(c.Size, c.Index, reader)
			if err != nil || !reflect.DeepEqual(want, proof) {
				fail("inclusion[%d]: proof differs from tlog.ProveRecord (%v)", i, err)
			}
		}
		out.Checked++
	}

	for i, c := range in.Consistency {
		proof := tlog.TreeProof(toHashes(c.Proof))
		oldRoot, newRoot := toHash(c.OldRoot), toHash(c.NewRoot)
		if err := tlog.CheckTree(proof, c.NewSize, newRoot, c.OldSize, oldRoot); err != nil {
			fail("consistency[%d] (%d -> %d): tlog.CheckTree: %v", i, c.OldSize, c.NewSize, err)
		}
		if haveTree {
			want, err := tlog.ProveTree(c.NewSize, c.OldSize, reader)
			if err != nil || !reflect.DeepEqual(want, proof) {
				fail("consistency[%d]: proof differs from tlog.ProveTree (%v)", i, err)
			}
		}
		out.Checked++
	}

	if in.SignerKey != "" {
		signer, err := note.NewSigner(in.SignerKey)
		if err != nil {
			fail("note.NewSigner: %v", err)
		}
		msg, err := note.Sign(&note.Note{Text: in.SignText}, signer)
		if err != nil {
			fail("note.Sign: %v", err)
		}
		out.GoSigned = string(msg)
		cosigned, err := note.Sign(n, signer)
		if err != nil {
			fail("note.Sign (cosign): %v", err)
		}
		out.GoCosigned = string(cosigned)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		fail("encode output: %v", err)
	}
	os.Stdout.Write(buf.Bytes())
}
