// Command oidc-provider is the OpenID Provider Archipelago's tests log in through: the
// example provider of github.com/zitadel/oidc (a certified OpenID Connect library; login
// form, discovery, authorization code with PKCE, ID tokens, userinfo, end_session) with
// its in-memory storage, plus what a real identity provider of a CHATONS member has and
// the example lacks:
//
//   - one confidential web client registered from the command line (id, secret file,
//     redirect URI, post-logout redirect URI);
//   - people read from a JSON file at every request, each with a password, a verified
//     email and groups, so a test can change someone's groups between two logins;
//   - a "groups" claim, in the ID token when the "groups" scope is asked for and at the
//     userinfo endpoint.
//
// It listens on 127.0.0.1 only and is a test tool: it is built by `make tools` from its
// own module (tools/oidcprovider/go.mod), never shipped.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// person is one entry of the users file.
type person struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Password      string   `json:"password"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
}

// people reads the users file at every call: a test edits it between two logins.
type people struct{ path string }

func (p people) all() []person {
	b, err := os.ReadFile(p.path)
	if err != nil {
		slog.Error("read users file", "err", err)
		return nil
	}
	var ps []person
	if err := json.Unmarshal(b, &ps); err != nil {
		slog.Error("parse users file", "err", err)
		return nil
	}
	return ps
}

func (p people) find(match func(person) bool) *person {
	for _, x := range p.all() {
		if match(x) {
			return &x
		}
	}
	return nil
}

func (x *person) user() *storage.User {
	if x == nil {
		return nil
	}
	first, last, _ := strings.Cut(x.Name, " ")
	return &storage.User{ID: x.ID, Username: x.Username, Password: x.Password, FirstName: first, LastName: last,
		Email: x.Email, EmailVerified: x.EmailVerified, PreferredLanguage: language.English}
}

// GetUserByID implements storage.UserStore.
func (p people) GetUserByID(id string) *storage.User {
	return p.find(func(x person) bool { return x.ID == id }).user()
}

// GetUserByUsername implements storage.UserStore.
func (p people) GetUserByUsername(name string) *storage.User {
	return p.find(func(x person) bool { return x.Username == name }).user()
}

// ExampleClientID implements storage.UserStore.
func (p people) ExampleClientID() string { return storage.ServiceUserID }

func (p people) groups(id string) []string {
	if x := p.find(func(x person) bool { return x.ID == id }); x != nil {
		return x.Groups
	}
	return nil
}

// store is the example storage with groups and a client that may be sent back after logout.
type store struct {
	*storage.Storage
	people     people
	clientID   string
	postLogout []string
}

// client adds the registered post-logout redirect URIs to the example's web client.
type client struct {
	op.Client
	postLogout []string
}

func (c client) PostLogoutRedirectURIs() []string { return c.postLogout }

// IsScopeAllowed lets the client ask for "groups" (the example drops scopes it does not know).
func (c client) IsScopeAllowed(scope string) bool {
	return scope == "groups" || c.Client.IsScopeAllowed(scope)
}

func (s *store) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil || id != s.clientID {
		return c, err
	}
	return client{Client: c, postLogout: s.postLogout}, nil
}

// SetUserinfoFromRequest fills the ID token's claims: the example's, plus groups when asked.
func (s *store) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
		return err
	}
	if slices.Contains(scopes, "groups") {
		info.AppendClaims("groups", s.people.groups(req.GetSubject()))
	}
	return nil
}

// SetUserinfoFromToken answers the userinfo endpoint: the example's claims, plus groups.
func (s *store) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, info, tokenID, subject, origin); err != nil {
		return err
	}
	info.AppendClaims("groups", s.people.groups(info.Subject))
	return nil
}

func main() {
	var (
		listen       = flag.String("listen", "127.0.0.1:9998", "address to listen on (loopback)")
		issuer       = flag.String("issuer", "", "issuer URL (default http://LISTEN)")
		clientID     = flag.String("client-id", "archipelago", "the one web client's id")
		secretFile   = flag.String("client-secret-file", "", "file holding the client's secret (required)")
		redirectURI  = flag.String("redirect-uri", "", "the client's redirect URI (required)")
		postLogout   = flag.String("post-logout-redirect-uri", "", "where end_session may send people back (optional)")
		usersFile    = flag.String("users", "", "JSON file of people: [{id, username, password, email, email_verified, name, groups}] (required)")
		logFormatArg = flag.String("log", "text", "text or json")
	)
	flag.Parse()
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	if *logFormatArg == "json" {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	log := slog.New(h)
	if *secretFile == "" || *redirectURI == "" || *usersFile == "" {
		fmt.Fprintln(os.Stderr, "oidc-provider: -client-secret-file, -redirect-uri and -users are required")
		os.Exit(2)
	}
	secret, err := os.ReadFile(*secretFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oidc-provider:", err)
		os.Exit(2)
	}
	if *issuer == "" {
		*issuer = "http://" + *listen
	}
	ps := people{path: *usersFile}
	if ps.all() == nil {
		fmt.Fprintln(os.Stderr, "oidc-provider: the users file holds nobody (or cannot be read)")
		os.Exit(2)
	}
	storage.RegisterClients(storage.WebClient(*clientID, strings.TrimSpace(string(secret)), *redirectURI))
	st := &store{Storage: storage.NewStorage(ps), people: ps, clientID: *clientID}
	if *postLogout != "" {
		st.postLogout = []string{*postLogout}
	}
	router := exampleop.SetupServer(*issuer, st, log, false)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "oidc-provider:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("oidc-provider listening", "issuer", *issuer, "addr", ln.Addr().String(), "client_id", *clientID)
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}
