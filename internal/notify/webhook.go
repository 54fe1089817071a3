package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook headers. The signature is HMAC-SHA256 under the channel's secret of
// "<timestamp>.<body>", hex-encoded, as "sha256=<hex>"; receivers recompute it and refuse
// a timestamp older than a few minutes (a replayed delivery).
const (
	HeaderSignature = "X-Archipelago-Signature"
	HeaderTimestamp = "X-Archipelago-Timestamp"
	HeaderDelivery  = "X-Archipelago-Delivery"
	HeaderEvent     = "X-Archipelago-Event"
)

// NewWebhookSecret returns a fresh webhook secret ("whsec_" + 43 base64url characters).
func NewWebhookSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
}

// Sign returns the signature header value for body sent at ts.
func Sign(secret string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature means a webhook request is not signed with the secret, or is too old.
var ErrBadSignature = errors.New("webhook signature does not verify")

// VerifySignature checks a received webhook: the signature header against the body and
// the timestamp header, and the timestamp within tolerance of now. Receivers written in
// Go can call it; docs/alerts.md shows the same check in shell and Python.
func VerifySignature(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	tsRaw := h.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no valid %s header", ErrBadSignature, HeaderTimestamp)
	}
	ts := time.Unix(sec, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %s is more than %s from now", ErrBadSignature, ts.UTC().Format(time.RFC3339), tolerance)
	}
	want := Sign(secret, ts, body)
	if !hmac.Equal([]byte(want), []byte(strings.TrimSpace(h.Get(HeaderSignature)))) {
		return ErrBadSignature
	}
	return nil
}

// sendWebhook POSTs body to url, signed with secret. A 2xx answer is success; anything
// else (including a redirect, which is not followed) is an error to retry.
func (s *Service) sendWebhook(ctx context.Context, url, secret string, delivery int64, event string, body []byte) (int, error) {
	if _, err := s.policy.ValidateWebhookURL(url); err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	now := s.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Archipelago-Notify/1")
	req.Header.Set(HeaderDelivery, strconv.FormatInt(delivery, 10))
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(secret, now, body))
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", RedactURL(url), unwrapURLError(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("POST %s: the receiver answered %s %s", RedactURL(url), resp.Status,
			strings.TrimSpace(strings.ToValidUTF8(string(snippet), "")))
	}
	return resp.StatusCode, nil
}

// unwrapURLError drops the URL from an *url.Error (it may carry a token).
func unwrapURLError(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && strings.Contains(err.Error(), "://") {
		if inner := u.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

func newHTTPClient(p AddressPolicy, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would be connected to instead of the checked address
			DialContext:           p.DialContext(timeout),
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          10,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
