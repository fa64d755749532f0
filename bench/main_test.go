package bench

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a contender leaves a goroutine behind. The
// goroutines that exist before any test runs (ants starts a default pool of
// its own when its package initialises) are not the contenders' doing.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}
