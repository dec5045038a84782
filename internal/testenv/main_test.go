package testenv

import (
	"fmt"
	"os"
	"testing"
)

// helperEnv makes this test binary act as a helper process for TestSharedAcrossProcesses
// instead of running the tests.
const helperEnv = "QUIVER_TESTENV_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "shared-s3" {
		tb := NewMainTB("testenv helper")
		s := SharedS3(tb)
		fmt.Println("endpoint=" + s.Endpoint)
		tb.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}
