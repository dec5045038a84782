package redis

import (
	"context"
	"fmt"
	"os"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/internal/testenv"
)

// One single node and one 3-master cluster serve the whole package; tests isolate themselves
// by project name. Tests that kill or pause a server start their own.
var (
	single  *testenv.Redis
	cluster *testenv.RedisCluster
)

// quietLogger drops go-redis's log lines (dial failures the tests cause on purpose).
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	goredis.SetLogger(quietLogger{})
	tb := testenv.NewMainTB("online/redis")
	single = testenv.StartRedis(tb)
	cluster = testenv.StartRedisCluster(tb)
	code := m.Run()
	tb.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func newSingleClient(addr string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
}

func newClusterClient(addrs []string) *goredis.ClusterClient {
	return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
}
