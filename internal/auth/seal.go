package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// sealedPrefix marks a secret encrypted with a Sealer.
const sealedPrefix = "sealed:v1:"

// ErrSealed: a stored secret is encrypted but no master key was given.
var ErrSealed = errors.New("access key secret is encrypted at rest: set the master key (LIVESNAP_MASTER_KEY)")

// Sealer encrypts access key secrets at rest with an operator master key (AES-256-GCM, the key
// id as associated data so a sealed secret cannot be moved to another key). Both signature
// schemes need the secret itself, so it must be recoverable: hashing is not an option.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the AES key from the master key text (SHA-256 of it); it must be at least
// 16 characters.
func NewSealer(masterKey string) (*Sealer, error) {
	if len(masterKey) < 16 {
		return nil, fmt.Errorf("master key must be at least 16 characters")
	}
	k := sha256.Sum256([]byte(masterKey))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts the secret of key id.
func (s *Sealer) Seal(id, secret string) string {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	out := s.aead.Seal(nonce, nonce, []byte(secret), []byte(id))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// Open decrypts a stored secret of key id. A nil Sealer opens only plain secrets. A plain
// secret (stored before sealing was turned on) is returned as is.
func (s *Sealer) Open(id, stored string) (string, error) {
	b64, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return stored, nil
	}
	if s == nil {
		return "", ErrSealed
	}
	raw, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", fmt.Errorf("sealed secret of %s is damaged", id)
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(id))
	if err != nil {
		return "", fmt.Errorf("sealed secret of %s does not open with this master key", id)
	}
	return string(plain), nil
}
