// Package auth holds accounts, access keys and their policies: who may call which ICE action.
package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// DefaultJobLimit is ICE's documented limit of concurrently started snapshot jobs per account.
const DefaultJobLimit = 100

// Account owns templates, jobs, files and access keys. Its ID is the ICE UserId.
type Account struct {
	ID             int64
	Disabled       bool
	ServiceEnabled bool
	JobLimit       int
	// CallbackSecret signs the account's callbacks (X-Livesnap-Signature).
	CallbackSecret string
	CreateTime     time.Time
}

// NewCallbackSecret returns a fresh random callback signing secret.
func NewCallbackSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// AccessKey is an access key pair of an account, with the actions it may call.
type AccessKey struct {
	ID         string
	AccountID  int64
	Secret     string
	Disabled   bool
	Policy     []string // e.g. "ice:*", "ice:GetLiveSnapshotJob", "ice:ListLiveSnapshot*"
	CreateTime time.Time
}

// FullAccess is the default policy of a new key.
var FullAccess = []string{"ice:*"}

// Allows reports whether policy grants action (an ICE action name such as "SubmitLiveSnapshotJob").
// A policy entry is "ice:" followed by an action name in which "*" matches any run of characters.
func Allows(policy []string, action string) bool {
	for _, p := range policy {
		pat, ok := strings.CutPrefix(p, "ice:")
		if ok && wildcardMatch(pat, action) {
			return true
		}
	}
	return false
}

// wildcardMatch matches s against a pattern where "*" stands for any run of characters.
func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// NewKeyPair returns a fresh random access key id and secret in the style of Alibaba Cloud
// ("LTAI" + 20 characters, 30-character secret).
func NewKeyPair() (id, secret string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	id = "LTAI" + strings.ToUpper(hex.EncodeToString(b[:10]))
	secret = base64.RawURLEncoding.EncodeToString(b[10:])[:30]
	return id, secret
}
