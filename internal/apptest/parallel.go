package apptest

import "testing"

// Parallel marks the test parallel and starts its own Archipelago with the standard
// fixture (members A and B and their actors, logged in): the opening of most tests.
func Parallel(t *testing.T, opts ...Option) (*Env, *Fixture) {
	t.Helper()
	t.Parallel()
	env := New(t, opts...)
	return env, env.Fixture()
}
