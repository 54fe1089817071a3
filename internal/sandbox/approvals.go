package sandbox

import (
	"context"
	"time"

	"github.com/chatons/archipelago/internal/app"
	"github.com/chatons/archipelago/internal/approvals"
	"github.com/chatons/archipelago/internal/audit"
)

// SandboxCoolingOff is the sandbox's approval cooling-off: far below the 72 h that
// production never goes under, so that an approved vault deletion can be watched to its
// end. Only the sandbox's configuration (ARCHIPELAGO_DEV_SHORT_COOLING_OFF) allows it; the
// API, the portal and every request say the cooling-off is shortened.
const SandboxCoolingOff = 2 * time.Minute

// seedApprovals shortens the cooling-off (an administrative seeding step of the sandbox,
// audited as a system change; outside the sandbox the rules change only by an approved
// request).
func seedApprovals(ctx context.Context, a *app.App) error {
	ctx = audit.WithActor(ctx, audit.System("sandbox seed (shortened approval cooling-off)"))
	sec := int64(SandboxCoolingOff / time.Second)
	_, err := a.Approvals.SettingsApply(ctx, approvals.SettingsInput{CoolingOffSeconds: &sec})
	return err
}
