package stream

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks no goroutine outlives the tests but the waiter of a Kafka broker this binary
// started for the whole test run (QUIVER_TESTENV_DIR), which bin/testenv stops.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/quiverfs/quiver/internal/testenv.startProcess.func1"))
}
