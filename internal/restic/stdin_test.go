package restic

import "testing"

func TestParseForgetPolicy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ForgetPolicy{
		"":                             {},
		"all":                          {},
		"daily=14,weekly=8,monthly=12": {Daily: 14, Weekly: 8, Monthly: 12},
		" last=1 , daily=2":            {Last: 1, Daily: 2},
	} {
		got, err := ParseForgetPolicy(in)
		if err != nil || got.Last != want.Last || got.Daily != want.Daily || got.Weekly != want.Weekly || got.Monthly != want.Monthly {
			t.Errorf("ParseForgetPolicy(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if back, _ := ParseForgetPolicy(got.String()); back.String() != got.String() {
			t.Errorf("%q does not read back", got.String())
		}
	}
	for _, bad := range []string{"daily", "daily=0", "daily=-1", "hourly=3", "daily=x"} {
		if _, err := ParseForgetPolicy(bad); err == nil {
			t.Errorf("ParseForgetPolicy(%q) accepted", bad)
		}
	}
	if _, err := (&Runner{}).Forget(t.Context(), Repo{}, ForgetPolicy{}, true); err == nil {
		t.Error("Forget with an empty policy would forget everything, and was not refused")
	}
}
