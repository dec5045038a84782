package ui

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (servers, the browser's connections) is stopped by its end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
