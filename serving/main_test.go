package serving_test

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/internal/testenv"
)

// One redis-server serves the package; tests isolate themselves by project name. Tests that
// kill the server start their own.
var redisSrv *testenv.Redis

func TestMain(m *testing.M) {
	tb := testenv.NewMainTB("serving")
	redisSrv = testenv.StartRedis(tb)
	code := m.Run()
	benchCleanup()
	tb.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
