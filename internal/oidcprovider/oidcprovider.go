// Package oidcprovider owns throwaway OpenID Providers for tests: the oidc-provider test
// tool (tools/oidcprovider: zitadel/oidc's example provider with a users file and a groups
// claim), built by `make tools` into .tools/bin, run as a separate process on a free
// loopback port and stopped by the PID its starter owns.
package oidcprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/chatons/archipelago/internal/proc"
)

// EnvBinary names the variable that points at the oidc-provider binary.
const EnvBinary = "ARCHIPELAGO_OIDC_PROVIDER"

// User is one person of the provider.
type User struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Password      string   `json:"password"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
}

// Options configure Start.
type Options struct {
	Dir                   string // where the users file, secret and log go (required; a test's TempDir)
	ClientID              string
	ClientSecret          string
	RedirectURI           string
	PostLogoutRedirectURI string
	Users                 []User
}

// Server is a running provider.
type Server struct {
	Issuer  string // http://127.0.0.1:PORT
	LogFile string
	users   string
	proc    *proc.Process
}

// Start starts the provider and waits until its discovery document answers.
func Start(ctx context.Context, o Options) (_ *Server, err error) {
	bin, err := proc.FindTool("oidc-provider", EnvBinary)
	if err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s := &Server{Issuer: "http://" + addr, LogFile: filepath.Join(o.Dir, "oidc-provider.log"), users: filepath.Join(o.Dir, "users.json")}
	if err := s.SetUsers(o.Users); err != nil {
		return nil, err
	}
	secret := filepath.Join(o.Dir, "client-secret")
	if err := os.WriteFile(secret, []byte(o.ClientSecret), 0o600); err != nil {
		return nil, err
	}
	args := []string{"-listen", addr, "-issuer", s.Issuer, "-client-id", o.ClientID, "-client-secret-file", secret,
		"-redirect-uri", o.RedirectURI, "-users", s.users}
	if o.PostLogoutRedirectURI != "" {
		args = append(args, "-post-logout-redirect-uri", o.PostLogoutRedirectURI)
	}
	s.proc, err = proc.Start(proc.Options{Name: "oidc-provider", Path: bin, Args: args, LogFile: s.LogFile, Dir: o.Dir})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()
	// Generous: a loaded machine starts processes slowly.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	if err := s.proc.WaitFor(wctx, "discovery", func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Issuer+"/.well-known/openid-configuration", nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("discovery answered %d", resp.StatusCode)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("%w; see %s", err, s.LogFile)
	}
	return s, nil
}

// SetUsers replaces the provider's people (read at every request): a test changes
// someone's groups between two logins this way.
func (s *Server) SetUsers(users []User) error {
	b, err := json.MarshalIndent(users, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.users + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.users)
}

// PID is the provider's process id.
func (s *Server) PID() int { return s.proc.PID() }

// Stop stops the provider.
func (s *Server) Stop() {
	if s.proc != nil {
		_ = s.proc.Stop(syscall.SIGTERM, 10*time.Second)
	}
}
