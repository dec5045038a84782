package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRebind(t *testing.T) {
	d := Dialect{Numbered: true}
	require.Equal(t, "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)", d.rebind("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"))
	require.Equal(t, "x = ?", (&Dialect{}).rebind("x = ?"))
}

func TestTimeEncoding(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.FixedZone("X", -7200))
	want := time.Date(2026, 3, 4, 7, 6, 7, 891234000, time.UTC)

	text := (&Dialect{TextTimes: true}).encTime(at)
	require.Equal(t, "2026-03-04T07:06:07.891234Z", text)
	// Fixed width: whole seconds keep their zeros, so text order is time order.
	require.Equal(t, "2026-03-04T07:06:07.000000Z", (&Dialect{TextTimes: true}).encTime(at.Truncate(time.Second)))
	require.Nil(t, (&Dialect{}).encTime(time.Time{}))
	require.Equal(t, want, (&Dialect{}).encTime(at))

	var got time.Time
	for _, src := range []any{text, []byte(text.(string)), want.In(time.Local)} {
		require.NoError(t, dbTime{&got}.Scan(src))
		require.Equal(t, want, got)
	}
	require.NoError(t, dbTime{&got}.Scan(nil))
	require.True(t, got.IsZero())
	require.Error(t, dbTime{&got}.Scan("yesterday"))
	require.Error(t, dbTime{&got}.Scan(42))
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate")
	require.NoError(t, err)
	defer db.Close()
	d := Dialect{Name: "sqlite", TextTimes: true}

	v1 := fstest.MapFS{"0001_a.sql": {Data: []byte("CREATE TABLE a (x INTEGER); CREATE TABLE b (y INTEGER);")}}
	require.NoError(t, Migrate(ctx, db, d, v1))
	require.NoError(t, Migrate(ctx, db, d, v1), "idempotent")

	v2 := fstest.MapFS{
		"0001_a.sql": v1["0001_a.sql"],
		"0002_c.sql": {Data: []byte("CREATE TABLE c (z INTEGER);")},
		"README.md":  {Data: []byte("not a migration")},
	}
	require.NoError(t, Migrate(ctx, db, d, v2))
	var n int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n))
	require.Equal(t, 2, n)

	// An older binary refuses a newer schema instead of misreading it.
	err = Migrate(ctx, db, d, v1)
	require.ErrorContains(t, err, "registry schema version 2 is newer than this Quiver knows (1)")

	// A failing migration leaves nothing of itself behind.
	bad := fstest.MapFS{
		"0001_a.sql": v1["0001_a.sql"], "0002_c.sql": v2["0002_c.sql"],
		"0003_bad.sql": {Data: []byte("CREATE TABLE d (w INTEGER); THIS IS NOT SQL;")},
	}
	require.Error(t, Migrate(ctx, db, d, bad))
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name = 'd'").Scan(&n))
	require.Zero(t, n)

	require.ErrorContains(t, Migrate(ctx, db, d, fstest.MapFS{"init.sql": {Data: []byte("")}}), "must start with a version number")
}
