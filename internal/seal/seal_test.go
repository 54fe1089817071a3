package seal

import (
	"errors"
	"strings"
	"testing"
)

func TestSealOpenRoundTripAndPurposeBinding(t *testing.T) {
	t.Parallel()
	kr, err := ParseKeyring(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	sealed := kr.SealString("island/1/admin_token", "s3cr3t-token")
	if strings.Contains(sealed, "s3cr3t") {
		t.Fatalf("sealed value leaks plaintext: %s", sealed)
	}
	if got := SealedKeyID(sealed); got != kr.CurrentKeyID() {
		t.Fatalf("sealed value names key %q, want %q", got, kr.CurrentKeyID())
	}
	pt, err := kr.OpenString("island/1/admin_token", sealed)
	if err != nil || pt != "s3cr3t-token" {
		t.Fatalf("open = %q, %v", pt, err)
	}
	if _, err := kr.OpenString("island/2/admin_token", sealed); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("opening under another purpose: err = %v, want ErrCorrupt", err)
	}
	tampered := sealed[:len(sealed)-2] + "AA"
	if _, err := kr.OpenString("island/1/admin_token", tampered); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("tampered: err = %v, want ErrCorrupt", err)
	}
	if a, b := kr.SealString("p", "x"), kr.SealString("p", "x"); a == b {
		t.Fatal("two seals of the same plaintext are equal: nonce reused")
	}
}

func TestRotationOpensOldValuesAndSealsWithNewKey(t *testing.T) {
	t.Parallel()
	oldKey, newKey := NewKey(), NewKey()
	oldRing, _ := ParseKeyring(oldKey)
	sealed := oldRing.SealString("p", "hello")

	rotated, err := ParseKeyring("# rotated\n" + newKey + "\n" + oldKey + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := rotated.OpenString("p", sealed); err != nil || pt != "hello" {
		t.Fatalf("rotated keyring cannot open old value: %q %v", pt, err)
	}
	if SealedKeyID(rotated.SealString("p", "x")) == SealedKeyID(sealed) {
		t.Fatal("rotated keyring still seals with the old key")
	}
	onlyNew, _ := ParseKeyring(newKey)
	if _, err := onlyNew.OpenString("p", sealed); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
}

func TestParseKeyRejectsWeakKeys(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "short", strings.Repeat("a", 63), "zz" + strings.Repeat("0", 62)} {
		if _, err := ParseKey(in); err == nil {
			t.Errorf("ParseKey(%q) accepted", in)
		}
	}
	if _, err := ParseKeyring("# only a comment\n"); err == nil {
		t.Error("empty keyring accepted")
	}
}

func TestDeriveIsStableAndLabelled(t *testing.T) {
	t.Parallel()
	kr, _ := ParseKeyring(NewKey())
	if string(kr.Derive("jwt")) != string(kr.Derive("jwt")) {
		t.Fatal("Derive is not deterministic")
	}
	if string(kr.Derive("jwt")) == string(kr.Derive("audit")) {
		t.Fatal("different labels give the same key")
	}
}
