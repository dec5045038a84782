package testenv

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStartRedis(t *testing.T) {
	r := StartRedis(t)
	reply, err := redisCommand(r.Addr, "SET k v")
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", reply)

	r.Kill()
	_, err = redisCommand(r.Addr, "PING")
	require.Error(t, err, "a killed server must refuse connections")

	r.Start()
	reply, err = redisCommand(r.Addr, "PING")
	require.NoError(t, err)
	require.Equal(t, "+PONG\r\n", reply)
}

func TestStartRedisCluster(t *testing.T) {
	c := StartRedisCluster(t)
	require.Len(t, c.Addrs(), 3)
	for _, n := range c.Nodes {
		info, err := redisCommand(n.Addr, "CLUSTER INFO")
		require.NoError(t, err)
		require.Contains(t, info, "cluster_state:ok")
		require.Contains(t, info, "cluster_slots_assigned:16384")
	}
	// A node killed and started again on its port rejoins from its nodes.conf.
	c.Nodes[1].Kill()
	c.Nodes[1].Start()
	require.NoError(t, c.WaitOK())
}

func TestMainTBRunsCleanups(t *testing.T) {
	m := NewMainTB("testenv test")
	var order []string
	m.Cleanup(func() { order = append(order, "first") })
	m.Cleanup(func() { order = append(order, "second") })
	dir := m.TempDir()
	require.True(t, strings.Contains(dir, "quiver-testenv_test-"))
	m.Close()
	require.Equal(t, []string{"second", "first"}, order)
	require.NoDirExists(t, dir)
}
