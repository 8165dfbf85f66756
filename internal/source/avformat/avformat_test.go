package avformat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// cbcReader decrypts what HLS AES-128 segments hold (CBC, PKCS#7), whatever the read sizes.
func TestCBCReader(t *testing.T) {
	key, iv := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	for _, n := range []int{0, 1, 15, 16, 17, 100000} {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		for i := range plain {
			plain[i] ^= byte(i)
		}
		pad := aes.BlockSize - n%aes.BlockSize
		padded := append(append([]byte{}, plain...), bytes.Repeat([]byte{byte(pad)}, pad)...)
		block, _ := aes.NewCipher(key)
		enc := make([]byte, len(padded))
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(enc, padded)

		r, err := newCBCReader(iotest.OneByteReader(bytes.NewReader(enc)), key, iv)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%d bytes: got %d bytes, %v", n, len(got), err)
		}
		if n > 0 {
			r, _ := newCBCReader(bytes.NewReader(enc[:len(enc)-1]), key, iv)
			if _, err := io.ReadAll(r); err == nil {
				t.Errorf("%d bytes: truncated ciphertext accepted", n)
			}
		}
	}
}

func TestParseNested(t *testing.T) {
	key, iv := "00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100"
	n, err := parseNested("crypto+http://h/seg.ts", key, iv, 10, 20)
	if err != nil || n.req.URL != "http://h/seg.ts" || hex.EncodeToString(n.key) != key || n.req.Offset != 10 || n.req.End != 20 {
		t.Fatalf("%+v, %v", n, err)
	}
	if n, err := parseNested("http://h/seg.ts", "", "", 0, -1); err != nil || n.key != nil {
		t.Fatalf("plain: %+v, %v", n, err)
	}
	for _, bad := range []struct {
		url, key string
		off, end int64
	}{
		{"crypto+http://h/x", "", 0, -1},
		{"crypto:file:///x", "00", 0, -1},
		{"http://h/x", "", -1, -1},
		{"http://h/x", "", 10, 5},
	} {
		if _, err := parseNested(bad.url, bad.key, iv, bad.off, bad.end); !errors.Is(err, ErrURLRefused) {
			t.Errorf("%+v: err = %v, want ErrURLRefused", bad, err)
		}
	}
}
