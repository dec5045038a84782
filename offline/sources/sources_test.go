package sources

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

func TestOpen(t *testing.T) {
	cases := []struct {
		name string
		src  *definitions.Source
		want string // the source's String, or "" for an error
		mesg string
	}{
		{"parquet", &definitions.Source{Name: "p", Parquet: &definitions.ParquetSource{Path: "x.parquet"}, TimestampField: "ts"}, `parquet source "p"`, ""},
		{"iceberg without catalog", &definitions.Source{Name: "i", Iceberg: &definitions.IcebergSource{Table: "a.b"}, TimestampField: "ts"}, "", "no catalog configured"},
		{"trino without client", &definitions.Source{Name: "t", Trino: &definitions.TrinoSource{Query: "SELECT 1"}, TimestampField: "ts"}, "", "no trino dsn configured"},
		{"none", &definitions.Source{Name: "n", TimestampField: "ts"}, "", "want exactly one of"},
		{"nil", nil, "", "nil source"},
		{"no timestamp field", &definitions.Source{Name: "p", Parquet: &definitions.ParquetSource{Path: "x"}}, "", "no timestamp_field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.src, Config{})
			if tc.want == "" {
				require.ErrorIs(t, err, offline.ErrInvalidSource)
				require.ErrorContains(t, err, tc.mesg)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, s.String())
		})
	}
}
