package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// Behind a trusted reverse proxy the client is the rightmost X-Forwarded-For address that
// is not a trusted proxy; from anywhere else the header changes nothing.
func TestClientAddressBelievesOnlyTrustedProxies(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"direct, no header", "192.0.2.7:4242", nil, "192.0.2.7:4242"},
		{"untrusted peer lies", "192.0.2.7:4242", []string{"203.0.113.9"}, "192.0.2.7:4242"},
		{"through the proxy", "10.0.0.2:5000", []string{"203.0.113.9"}, "203.0.113.9:0"},
		{"client spoofs a hop", "10.0.0.2:5000", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9:0"},
		{"two proxies", "10.0.0.2:5000", []string{"203.0.113.9, 10.0.0.3"}, "203.0.113.9:0"},
		{"headers repeated", "10.0.0.2:5000", []string{"198.51.100.1", "203.0.113.9, 10.0.0.3"}, "203.0.113.9:0"},
		{"IPv6 proxy", "[::1]:5000", []string{"2001:db8::5"}, "[2001:db8::5]:0"},
		{"garbage stops the walk", "10.0.0.2:5000", []string{"203.0.113.9, not-an-ip, 10.0.0.3"}, "10.0.0.3:0"},
		{"only garbage", "10.0.0.2:5000", []string{"unknown"}, "10.0.0.2:5000"},
	} {
		var got string
		h := clientAddress(trusted, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("%s: remote address %s, want %s", c.name, got, c.want)
		}
	}
	// No trusted proxies: the handler is not even wrapped.
	var got string
	h := clientAddress(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:5000"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "10.0.0.2:5000" {
		t.Errorf("without trusted proxies: %s", got)
	}
}
