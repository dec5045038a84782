package pitjoin

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/quiverfs/quiver/definitions"
	"github.com/stretchr/testify/require"
)

func TestViewsFor(t *testing.T) {
	i64t := definitions.Type{Elem: definitions.Int64}
	strt := definitions.Type{Elem: definitions.String}
	repo, err := definitions.NewRepo([]definitions.Object{
		&definitions.Entity{Name: "user", JoinKeys: []definitions.Field{{Name: "user_id", Type: i64t}}},
		&definitions.Entity{Name: "country", JoinKeys: []definitions.Field{{Name: "country", Type: strt}}},
		&definitions.Source{Name: "src", Parquet: &definitions.ParquetSource{Path: "x.parquet"}, TimestampField: "ts"},
		&definitions.FeatureView{Name: "a", Entities: []string{"user", "country"}, Source: "src", TTL: definitions.Duration(time.Hour),
			Features: []definitions.Field{{Name: "x", Type: i64t}, {Name: "y", Type: i64t}}},
		&definitions.FeatureView{Name: "b", Entities: []string{"user"}, Source: "src",
			Features: []definitions.Field{{Name: "z", Type: i64t}}},
		&definitions.FeatureService{Name: "svc", Features: []definitions.FeatureRef{{View: "a", Feature: "y"}, {View: "b", Feature: "*"}, {View: "a", Feature: "x"}}},
	})
	require.NoError(t, err)
	feats, err := repo.ResolveService("svc")
	require.NoError(t, err)
	opened := map[string]bool{}
	views, err := ViewsFor(repo, feats, func(v *definitions.FeatureView) OpenFunc {
		opened[v.Name] = true
		return func(context.Context, EventRange) (array.RecordReader, error) { return nil, nil }
	})
	require.NoError(t, err)
	require.Len(t, views, 2)
	require.Equal(t, "a", views[0].Name)
	require.Equal(t, []string{"user_id", "country"}, views[0].JoinKeys)
	require.Equal(t, time.Hour, views[0].TTL)
	require.Equal(t, []string{"y", "x"}, views[0].Features)
	require.Equal(t, []string{"user_id"}, views[1].JoinKeys)
	require.Equal(t, []string{"z"}, views[1].Features)
	require.Zero(t, views[1].TTL)
	require.Equal(t, map[string]bool{"a": true, "b": true}, opened)
}
