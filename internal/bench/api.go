package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/livesnap/livesnap/internal/api"
	"github.com/livesnap/livesnap/internal/rpc"
)

// apiClient calls livesnap's ICE API as the official SDKs do: a V3-signed form POST.
type apiClient struct {
	endpoint, keyID, secret string
	http                    *http.Client
}

// apiError is an error answer.
type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// call runs action with params and decodes the JSON answer.
func (c *apiClient) call(ctx context.Context, action string, params url.Values) (map[string]any, error) {
	body := []byte(params.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("x-acs-action", action)
	req.Header.Set("x-acs-version", api.Version)
	rpc.SignV3(req, body, c.keyID, c.secret, "", time.Now())
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: %w", action, &apiError{resp.StatusCode, strings.TrimSpace(string(raw))})
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", action, err)
	}
	return out, nil
}

// get fetches a plain HTTP path of the service (e.g. /metrics).
func (c *apiClient) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.endpoint+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(b), nil
}
