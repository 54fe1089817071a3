// Package client is a small client of Archipelago's REST API for the command line: it
// authenticates with an API token, follows the one cursor pagination of every list to the
// end, and turns the API's JSON error into a Go error that keeps its code and field.
//
// Objects are kept as decoded JSON (map[string]any) on purpose: the CLI prints what the
// server answered, so a field added to the API shows up in `-o json` without a client change.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Object is one API object as the server sent it.
type Object = map[string]any

// Client calls one Archipelago server.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	// UserAgent is sent with every request.
	UserAgent string
	// Language, when set, is sent as Accept-Language: the server says its messages (API
	// errors) in it unless the caller's own setting says otherwise.
	Language string
}

// New returns a client of the server at baseURL (for example https://archipelago.example.org)
// authenticated by token (an API token created in the portal or with POST /v1/tokens).
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("API URL %q: want http(s)://host[:port]", baseURL)
	}
	if strings.TrimSpace(token) == "" {
		return nil, errors.New("no API token: set ARCHIPELAGO_API_TOKEN (or ARCHIPELAGO_API_TOKEN_FILE); create one in the portal under Account → API tokens")
	}
	return &Client{base: u, token: strings.TrimSpace(token), http: &http.Client{Timeout: 60 * time.Second},
		UserAgent: "archipelago-cli"}, nil
}

// APIError is the API's error answer: {"error":{"code","message","field","request_id"}}.
type APIError struct {
	Status    int    `json:"-"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Do sends one request with an optional JSON body and decodes the JSON answer into out
// (when out is not nil). It returns the HTTP status; a status ≥ 400 is an *APIError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) (int, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	if c.Language != "" {
		req.Header.Set("Accept-Language", c.Language)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		var env struct {
			Error *APIError `json:"error"`
		}
		if json.Unmarshal(data, &env) == nil && env.Error != nil {
			env.Error.Status = resp.StatusCode
			return resp.StatusCode, env.Error
		}
		return resp.StatusCode, &APIError{Status: resp.StatusCode, Code: "http_error",
			Message: strings.TrimSpace(string(truncate(data, 300)))}
	}
	if out != nil && len(data) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// Get reads one object.
func (c *Client) Get(ctx context.Context, path string, query url.Values) (Object, error) {
	var o Object
	_, err := c.Do(ctx, http.MethodGet, path, query, nil, &o)
	return o, err
}

// List reads every page of a list whose items are under key, following next_cursor until
// the last page, or until max items when max > 0 (then more reports whether items were left).
func (c *Client) List(ctx context.Context, path, key string, query url.Values, max int) (items []Object, more bool, err error) {
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for {
		var page map[string]json.RawMessage
		if _, err := c.Do(ctx, http.MethodGet, path, q, nil, &page); err != nil {
			return nil, false, err
		}
		raw, ok := page[key]
		if !ok {
			return nil, false, fmt.Errorf("GET %s: the answer has no %q list", path, key)
		}
		var batch []Object
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&batch); err != nil {
			return nil, false, fmt.Errorf("GET %s: %w", path, err)
		}
		items = append(items, batch...)
		var next *string
		if nc, ok := page["next_cursor"]; ok {
			_ = json.Unmarshal(nc, &next)
		}
		if max > 0 && len(items) >= max {
			return items[:max], len(items) > max || (next != nil && *next != ""), nil
		}
		if next == nil || *next == "" {
			return items, false, nil
		}
		q.Set("cursor", *next)
	}
}

// Post sends a JSON body and decodes the answer.
func (c *Client) Post(ctx context.Context, path string, body any) (Object, int, error) {
	var o Object
	status, err := c.Do(ctx, http.MethodPost, path, nil, body, &o)
	return o, status, err
}
