// Package oidclogin owns logging in to the portal through the federation's identity
// provider (OpenID Connect, with github.com/coreos/go-oidc): discovery from the issuer
// URL, the authorization code flow with PKCE (S256), state and nonce kept in a short-lived
// sealed cookie bound to the browser, the ID token's verification (signature, issuer,
// audience, expiry, nonce, access-token hash), the claims read from the ID token and the
// userinfo endpoint, and the role map that turns a groups claim into member roles and
// federation admin. RP-initiated logout uses the provider's end_session_endpoint when
// it advertises one.
//
// It decides nothing about users: internal/identity (ExternalLogin) finds or creates the
// user, applies the roles and opens the session. It never logs the client secret, a code,
// a token or the flow cookie.
package oidclogin
