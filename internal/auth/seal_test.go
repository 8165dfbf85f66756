package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestSealer(t *testing.T) {
	s, err := NewSealer("0123456789abcdef-master")
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal("LTAI1", "the-secret")
	if strings.Contains(sealed, "the-secret") || !strings.HasPrefix(sealed, sealedPrefix) {
		t.Fatalf("not sealed: %s", sealed)
	}
	if got, err := s.Open("LTAI1", sealed); err != nil || got != "the-secret" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := s.Open("LTAI2", sealed); err == nil {
		t.Fatal("a sealed secret must not open under another key id")
	}
	other, _ := NewSealer("another-master-key-xyz")
	if _, err := other.Open("LTAI1", sealed); err == nil {
		t.Fatal("a sealed secret must not open with another master key")
	}
	var none *Sealer
	if _, err := none.Open("LTAI1", sealed); !errors.Is(err, ErrSealed) {
		t.Fatalf("no master key: %v", err)
	}
	if got, _ := none.Open("LTAI1", "plain"); got != "plain" {
		t.Fatal("plain secrets pass through")
	}
	if _, err := NewSealer("short"); err == nil {
		t.Fatal("short master key accepted")
	}
}
