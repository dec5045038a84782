package iceberg

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

func TestProjectNamespace(t *testing.T) {
	// Lower-case names map where they always did: their tables stay where they are.
	require.Equal(t, "quiver_shop", ProjectNamespace("shop"))
	require.Equal(t, "quiver_shop_2", ProjectNamespace("shop_2"))
	require.Equal(t, "quiver_shop_d00aae6b", ProjectNamespace("shop_d00aae6b"))
	require.Equal(t, "quiver__x", ProjectNamespace("_x"))
	// Every other name is escaped, after a digit no plain name can start with.
	require.Equal(t, "quiver_0_shop", ProjectNamespace("Shop"))
	require.Equal(t, "quiver_0_s_h_o_p", ProjectNamespace("SHOP"))
	require.Equal(t, "quiver_0a_046b", ProjectNamespace("a.b"))
	require.Equal(t, "quiver_01shop", ProjectNamespace("1shop"))
}

// adversarialProjects are names chosen to collide under a folding or truncating scheme: case
// variants, names that spell another name's escaped or hashed form, separators, non-ASCII.
var adversarialProjects = []string{
	"shop", "Shop", "SHOP", "sHoP", "shop_d00aae6b", "Shop_d00aae6b", "shop_", "_shop", "__shop",
	"0_shop", "0shop", "_s_h_o_p", "s_h_o_p", "0_s_h_o_p", "a.b", "a_b", "a__b", "a_046b", "0a_046b",
	"A_b", "a_B", "_a_b", "a", "A", "_", "__", "___", "0", "00", "", "quiver", "quiver_shop", "é",
	"e\u0301", "\x00", "shop\x00", "a/b", "a\\b", "..", "ß", "SS", "ss",
}

// decodeProjectKey inverts ProjectKey; it exists to prove ProjectKey injective (a function
// with an inverse never maps two names to one key).
func decodeProjectKey(key string) (string, bool) {
	if key == "" || key[0] != '0' {
		return key, plainName.MatchString(key)
	}
	var b []byte
	for i := 1; i < len(key); i++ {
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b = append(b, c)
		case c != '_' || i+1 >= len(key):
			return "", false
		case key[i+1] == '_':
			b = append(b, '_')
			i++
		case key[i+1] >= 'a' && key[i+1] <= 'z':
			b = append(b, key[i+1]-('a'-'A'))
			i++
		case i+3 < len(key):
			n, err := strconv.Atoi(key[i+1 : i+4])
			if err != nil || n > 255 {
				return "", false
			}
			b = append(b, byte(n))
			i += 3
		default:
			return "", false
		}
	}
	return string(b), !plainName.MatchString(string(b))
}

var plainName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// TestProjectNamespaceInjective: no two of the adversarial names share a namespace or a
// storage key, case-insensitively too (a folder on macOS), and each key decodes back to its
// name.
func TestProjectNamespaceInjective(t *testing.T) {
	seen := map[string]string{}
	for _, p := range adversarialProjects {
		ns := ProjectNamespace(p)
		require.Regexp(t, `^quiver_[a-z0-9_]*$`, ns, "project %q", p)
		prev, dup := seen[strings.ToLower(ns)]
		require.False(t, dup, "projects %q and %q share namespace %s", prev, p, ns)
		seen[strings.ToLower(ns)] = p
		got, ok := decodeProjectKey(strings.TrimPrefix(ns, "quiver_"))
		require.True(t, ok, "project %q: key %s does not decode", p, ns)
		require.Equal(t, p, got)
	}
}

// FuzzProjectNamespace: distinct names never share a namespace, and every key decodes back.
func FuzzProjectNamespace(f *testing.F) {
	for i, p := range adversarialProjects {
		f.Add(p, adversarialProjects[(i+1)%len(adversarialProjects)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		na, nb := strings.TrimPrefix(ProjectNamespace(a), "quiver_"), strings.TrimPrefix(ProjectNamespace(b), "quiver_")
		if a != b && na == nb {
			t.Fatalf("projects %q and %q share the key %q", a, b, na)
		}
		for _, r := range na {
			if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
				t.Fatalf("project %q: key %q holds %q", a, na, r)
			}
		}
		if got, ok := decodeProjectKey(na); !ok || got != a {
			t.Fatalf("project %q: key %q decodes to %q (%v)", a, na, got, ok)
		}
	})
}

// TestProjectsSharingACatalogAreIsolated: two projects' stores over one catalog write tables
// of the same view name; each reads only its own rows.
func TestProjectsSharingACatalogAreIsolated(t *testing.T) {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	cat := openCatalog(t)
	a, err := NewStore(ctx, cat, StoreOptions{Namespace: ProjectNamespace("a")})
	require.NoError(t, err)
	b, err := NewStore(ctx, cat, StoreOptions{Namespace: ProjectNamespace("b")})
	require.NoError(t, err)
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err = a.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows[:3]), "1")
	require.NoError(t, err)
	_, err = b.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows[3:]), "2")
	require.NoError(t, err)
	require.Equal(t, sourcetest.Expected(rows[:3], all, true), scanAll(t, a, offline.ScanRequest{}))
	require.Equal(t, sourcetest.Expected(rows[3:], all, true), scanAll(t, b, offline.ScanRequest{}))
	require.Equal(t, "quiver_a.user_stats", a.tableName("user_stats", 1))
}

// TestAdoptLegacyTables: a table in the old shared namespace moves to the project whose run
// wrote it, keeping its rows and snapshots; another project's table and an empty one stay.
func TestAdoptLegacyTables(t *testing.T) {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	cat := openCatalog(t)
	legacy, err := NewStore(ctx, cat, StoreOptions{})
	require.NoError(t, err)
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err = legacy.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "7")
	require.NoError(t, err)
	other := sourcetest.View()
	other.View = "merchant_stats"
	_, err = legacy.WriteInterval(ctx, other, all, stream(t, mem, rows[:2]), "8")
	require.NoError(t, err)
	empty := sourcetest.View()
	empty.View = "never_written"
	require.NoError(t, legacy.EnsureTable(ctx, empty))
	before, err := legacy.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)

	// Run 7 is shop's run of user_stats; run 8 belongs to another project.
	owns := func(_ context.Context, view, runID string) (bool, error) {
		return runID == "7" && view == "user_stats", nil
	}
	shop, err := NewStore(ctx, cat, StoreOptions{Namespace: ProjectNamespace("shop")})
	require.NoError(t, err)
	moved, err := shop.AdoptLegacyTables(ctx, owns)
	require.NoError(t, err)
	require.Equal(t, []string{"user_stats"}, moved)
	require.Equal(t, sourcetest.Expected(rows, all, true), scanAll(t, shop, offline.ScanRequest{}))
	after, err := shop.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Equal(t, before, after, "history moves with the table")
	_, err = legacy.Snapshots(ctx, "user_stats", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound)
	_, err = legacy.Snapshots(ctx, "merchant_stats", 1)
	require.NoError(t, err, "another project's table stays")
	_, err = shop.Snapshots(ctx, "never_written", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound, "an empty table is not adopted")

	// Idempotent; and writes continue on the adopted table.
	moved, err = shop.AdoptLegacyTables(ctx, owns)
	require.NoError(t, err)
	require.Empty(t, moved)
	_, err = shop.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "9")
	require.NoError(t, err)
	after, err = shop.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, after, len(before)+1)
}

// TestEmptyWriteCommitsNothing: a write with no rows over an interval that holds none commits
// no snapshot; over an interval that holds rows it commits (removing them).
func TestEmptyWriteCommitsNothing(t *testing.T) {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	s, _ := newStore(t, StoreOptions{})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	none := func() offline.Stream { return offline.NewSliceStream(sourcetest.View().Arrow()) }

	// Nothing ever written: no snapshot.
	res, err := s.WriteInterval(ctx, sourcetest.View(), all, none(), "1")
	require.NoError(t, err)
	require.True(t, res.NoOp)
	require.Zero(t, res.SnapshotID)
	snaps, err := s.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Empty(t, snaps)

	_, err = s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "2")
	require.NoError(t, err)
	later := offline.Range{Start: all.End, End: all.End.Add(30 * 24 * time.Hour)}
	for i := range 5 {
		res, err := s.WriteInterval(ctx, sourcetest.View(), later, none(), "3")
		require.NoError(t, err, "run %d", i)
		require.True(t, res.NoOp)
	}
	snaps, err = s.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, snaps, 1, "no-op writes add no snapshot")

	// Re-materializing an interval whose source is now empty does remove its rows.
	res, err = s.WriteInterval(ctx, sourcetest.View(), all, none(), "4")
	require.NoError(t, err)
	require.False(t, res.NoOp)
	require.NotZero(t, res.SnapshotID)
	require.Empty(t, scanAll(t, s, offline.ScanRequest{}))
}

// TestAdoptTablesFromFoldedNamespace: before issue 22 "Shop" and "shop_d00aae6b" shared the
// namespace quiver_shop_d00aae6b. There, shop_d00aae6b sees Shop's table as another
// project's; Shop moves its table (rows and history) to its own namespace and leaves the
// other project's; after that the namespace holds only shop_d00aae6b's.
func TestAdoptTablesFromFoldedNamespace(t *testing.T) {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	cat := openCatalog(t)
	folded := FoldedNamespace("Shop")
	require.Equal(t, ProjectNamespace("shop_d00aae6b"), folded)
	require.Empty(t, FoldedNamespace("shop"), "a lower-case name's namespace never changed")
	shared, err := NewStore(ctx, cat, StoreOptions{Namespace: folded})
	require.NoError(t, err)
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err = shared.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "7") // Shop's run
	require.NoError(t, err)
	theirs := sourcetest.View()
	theirs.View = "merchant_stats"
	_, err = shared.WriteInterval(ctx, theirs, all, stream(t, mem, rows[:2]), "8") // shop_d00aae6b's
	require.NoError(t, err)
	before, err := shared.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	who := func(_ context.Context, runID string) (string, error) {
		return map[string]string{"7": "Shop", "8": "shop_d00aae6b"}[runID], nil
	}

	owner, tables, err := shared.ForeignWriter(ctx, "shop_d00aae6b", who)
	require.NoError(t, err)
	require.Equal(t, "Shop", owner)
	require.Equal(t, []string{folded + ".user_stats"}, tables)

	shop, err := NewStore(ctx, cat, StoreOptions{Namespace: ProjectNamespace("Shop")})
	require.NoError(t, err)
	moved, err := shop.AdoptTablesFrom(ctx, folded, "Shop", who)
	require.NoError(t, err)
	require.Equal(t, []string{"user_stats"}, moved)
	require.Equal(t, sourcetest.Expected(rows, all, true), scanAll(t, shop, offline.ScanRequest{}))
	after, err := shop.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Equal(t, before, after, "history moves with the table")
	_, err = shop.Snapshots(ctx, "merchant_stats", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound, "the other project's table stays")

	owner, tables, err = shared.ForeignWriter(ctx, "shop_d00aae6b", who)
	require.NoError(t, err)
	require.Empty(t, owner)
	require.Empty(t, tables)
	moved, err = shop.AdoptTablesFrom(ctx, folded, "Shop", who)
	require.NoError(t, err)
	require.Empty(t, moved, "idempotent")
}
