package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/api"
	"github.com/livesnap/livesnap/internal/rpc"
)

// call runs `livesnap call ACTION --Name value ...`: a V3-signed POST like the official SDKs
// send, printing the JSON answer. An error answer is printed too and makes the command fail.
func call(args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("usage: livesnap call ACTION [--Name value ...]")
	}
	action, params, err := parseCallArgs(args[0], args[1:])
	if err != nil {
		return err
	}
	creds, err := loadCredentials()
	if err != nil {
		return err
	}
	endpoint := creds.Endpoint
	if !strings.Contains(endpoint, "://") {
		endpoint = "http://" + endpoint
	}
	body := []byte(params.Encode())
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(endpoint, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("x-acs-action", action)
	req.Header.Set("x-acs-version", api.Version)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	rpc.SignV3(req, body, creds.AccessKeyId, creds.AccessKeySecret, hex.EncodeToString(nonce), time.Now())
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, raw, "", "  ") == nil {
		raw = pretty.Bytes()
	}
	fmt.Fprintln(stdout, string(raw))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered HTTP %d", action, resp.StatusCode)
	}
	return nil
}

// parseCallArgs reads "--Name value" and "--Name=value" pairs.
func parseCallArgs(action string, args []string) (string, url.Values, error) {
	params := url.Values{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") || len(a) < 3 {
			return "", nil, fmt.Errorf("expected --Name value, got %q", a)
		}
		name, value, ok := strings.Cut(a[2:], "=")
		if !ok {
			if i+1 >= len(args) {
				return "", nil, fmt.Errorf("--%s needs a value", name)
			}
			i++
			value = args[i]
		}
		params.Add(name, value)
	}
	return action, params, nil
}

// loadCredentials reads LIVESNAP_ACCESS_KEY_ID/_SECRET/LIVESNAP_ENDPOINT, falling back to
// $LIVESNAP_DATA/credentials.json (default ./data).
func loadCredentials() (credentials, error) {
	var c credentials
	path := filepath.Join(env("LIVESNAP_DATA", "./data"), "credentials.json")
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	c.AccessKeyId = env("LIVESNAP_ACCESS_KEY_ID", c.AccessKeyId)
	c.AccessKeySecret = env("LIVESNAP_ACCESS_KEY_SECRET", c.AccessKeySecret)
	c.Endpoint = env("LIVESNAP_ENDPOINT", c.Endpoint)
	if c.Endpoint == "" {
		c.Endpoint = "127.0.0.1:8080"
	}
	if c.AccessKeyId == "" || c.AccessKeySecret == "" {
		return c, fmt.Errorf("no credentials: set LIVESNAP_ACCESS_KEY_ID and LIVESNAP_ACCESS_KEY_SECRET, or run from the directory holding data/credentials.json")
	}
	return c, nil
}
