package trino

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// TestBuildStageSQLGolden pins the CREATE TABLE AS a Trino-engine run stages an interval with
// (materialize --engine trino): the canonical columns cast to their Iceberg types, one row per
// (join keys, event_ts, created_ts), the time bounds as parameters.
func TestBuildStageSQLGolden(t *testing.T) {
	cases := []struct {
		name   string
		def    definitions.TrinoSource
		fields offline.Fields
	}{
		{"stage_query", definitions.TrinoSource{Query: "SELECT * FROM hive.web.activity"}, sourcetest.Fields()},
		{"stage_no_created", definitions.TrinoSource{Table: "analytics.activity"}, offline.Fields{Timestamp: "ts"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BuildStageSQL(tc.def, tc.fields, sourcetest.View(), "quiverstage_shop", "r7_user_stats")
			require.NoError(t, err)
			path := filepath.Join("testdata", tc.name+".sql")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got+"\n"), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -update to create it")
			require.Equal(t, string(want), got+"\n")
		})
	}
	_, err := StageSource(&definitions.Source{Name: "files", Parquet: &definitions.ParquetSource{Path: "a.parquet"}})
	require.ErrorIs(t, err, ErrNoStageSource)
	require.ErrorContains(t, err, `source "files" is a parquet source`)
	def, err := StageSource(&definitions.Source{Name: "lake", Iceberg: &definitions.IcebergSource{Table: "analytics.events"}})
	require.NoError(t, err)
	require.Equal(t, definitions.TrinoSource{Table: "analytics.events"}, def)
}
