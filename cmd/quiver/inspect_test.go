package main

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestListViewsSummarizesAggregations is issue 22 item 19 for the CLI: quiver list views
// says what an aggregation view aggregates (function, column, windows) instead of "ttl 0".
func TestListViewsSummarizesAggregations(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	writeFile(t, filepath.Join(dir, "features", "aggs.yaml"), `feature_views:
  - name: activity_aggs
    entities: [user]
    source: user_activity
    columns:
      - { name: clicks_7d, type: int64 }
      - { name: spend_30d, type: float64 }
    aggregations:
      - { column: spend_30d, function: sum, windows: [1h, 1d, 7d] }
      - { column: clicks_7d, function: count, windows: [1d] }
`)
	env := map[string]string{"QUIVER_USER": "golden"}
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, env, "-C", dir, "list", "views")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.NotContains(t, r.stdout, "ttl 0")
	stamp := regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
	golden(t, "list_views_aggregations.txt", stamp.ReplaceAllString(r.stdout, "YYYY-MM-DD hh:mm:ss"))
}
