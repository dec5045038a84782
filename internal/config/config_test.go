package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
)

func write(t *testing.T, content string) string {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o644))
	return dir
}

func TestDefaultsAndRelativePaths(t *testing.T) {
	dir := write(t, "project: shop\n")
	c, err := Load(dir, func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, "shop", c.Project)
	require.Equal(t, "sqlite://"+filepath.Join(dir, ".quiver/registry.db"), c.Registry)
	require.Equal(t, "sqlite://"+filepath.Join(dir, ".quiver/online.db"), c.Online)
	require.Equal(t, filepath.Join(dir, ".quiver/warehouse"), c.Offline.Warehouse)
	require.Equal(t, "sql", c.Offline.Catalog)
}

func TestEnvironmentOverrides(t *testing.T) {
	dir := write(t, "project: shop\nregistry: sqlite://r.db\nonline: redis://a:6379/0\ntrino:\n  dsn: http://u@t:8080\n")
	env := map[string]string{EnvRegistry: "postgres://u:p@db/q", EnvOnline: "redis-cluster://h1:7000,h2:7001", EnvWarehouse: "/data/wh", EnvTrinoDSN: "http://other@t:8080"}
	c, err := Load(dir, func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, "postgres://u:p@db/q", c.Registry)
	require.Equal(t, "redis-cluster://h1:7000,h2:7001", c.Online)
	require.Equal(t, "/data/wh", c.Offline.Warehouse)
	require.Equal(t, "http://other@t:8080", c.Trino.DSN)
}

func TestInvalidConfig(t *testing.T) {
	cases := map[string]string{
		"project: shop\nregistyr: x\n":                                "field registyr not found",
		"registry: sqlite://x.db\n":                                   "project is required",
		"project: shop\nregistry: mysql://x\n":                        `registry URL scheme "mysql" is not supported`,
		"project: shop\nonline: localhost:6379\n":                     "is not a URL",
		"project: shop\nregistry: postgres://u:s3cret@h\nonline: x\n": "online",
		"project: shop\noffline: { catalog: hive }\n":                 `offline catalog "hive" is not supported`,
		"project: shop\noffline: { catalog: rest }\n":                 "catalog rest needs catalog_uri",
		"project: my-shop\n":                                          "invalid project name",
	}
	for content, want := range cases {
		_, err := Load(write(t, content), func(string) string { return "" })
		require.ErrorIs(t, err, definitions.ErrInvalid, content)
		require.ErrorContains(t, err, want, content)
		require.NotContains(t, err.Error(), "s3cret")
	}
	_, err := Load(t.TempDir(), func(string) string { return "" })
	require.True(t, errors.Is(err, ErrNoRepo))
}

func TestAllowedPaths(t *testing.T) {
	dir := write(t, "project: shop\nallowed_paths: [../lake, /data/shared]\n")
	c, err := Load(dir, func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(filepath.Dir(dir), "lake"), "/data/shared"}, c.AllowedPaths)

	dir = write(t, "project: shop\nallowed_paths: [s3://bucket/x]\n")
	_, err = Load(dir, func(string) string { return "" })
	require.ErrorIs(t, err, definitions.ErrInvalid)
	require.ErrorContains(t, err, `allowed_paths entry "s3://bucket/x"`)
}
