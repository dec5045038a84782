package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/training"
)

// writeSnapshot writes a dataset snapshot of 50 rows: user_id, event_timestamp, the label
// churned (of labelType), a numeric feature clicks_7d and a feature country (of
// featureType), and returns its directory.
func writeSnapshot(t *testing.T, labelType, featureType arrow.DataType) string {
	t.Helper()
	ctx := context.Background()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "churned", Type: labelType},
		{Name: "user_stats__clicks_7d", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "user_stats__country", Type: featureType, Nullable: true},
	}, nil)
	cols := []training.ColumnInfo{
		{Name: "user_id", Type: "int64", Role: "entity"},
		{Name: "event_timestamp", Type: "timestamp[us, tz=UTC]", Role: "entity"},
		{Name: "churned", Type: labelType.String(), Role: "entity"},
		{Name: "user_stats__clicks_7d", Type: "int64", Nullable: true, Role: "feature", Feature: "user_stats:clicks_7d"},
		{Name: "user_stats__country", Type: featureType.String(), Nullable: true, Role: "feature", Feature: "user_stats:country"},
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	t0 := time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)
	appendValue := func(f array.Builder, i int) {
		switch fb := f.(type) {
		case *array.BooleanBuilder:
			fb.Append(i%3 == 0)
		case *array.Float64Builder:
			fb.Append(float64(i % 2))
		case *array.StringBuilder:
			fb.Append([]string{"DE", "FR", "US"}[i%3])
		case *array.BinaryBuilder:
			fb.Append([]byte{byte(i)})
		default:
			t.Fatalf("no test values for %T", f)
		}
	}
	for i := range 50 {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(t0.Add(time.Duration(i) * time.Minute).UnixMicro()))
		appendValue(b.Field(2), i)
		b.Field(3).(*array.Int64Builder).Append(int64(i * 7 % 31))
		appendValue(b.Field(4), i)
	}
	rec := b.NewRecordBatch()
	done := false
	next := func(context.Context) (arrow.RecordBatch, error) {
		if done {
			return nil, io.EOF
		}
		done = true
		return rec, nil
	}
	lineage := &training.Lineage{FeatureService: training.ObjectRef{Name: "churn_v1", Version: 1}, Engine: "local", QuiverVersion: "test",
		Entities: training.EntityInput{Kind: "file", Path: "labels.parquet", Rows: 50}}
	staged, err := training.WriteStaged(ctx, t.TempDir(), schema, cols, lineage, next, training.WriteOptions{})
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "ds")
	require.NoError(t, staged.Publish(dir))
	return dir
}

// runTrainer runs the trainer on dataset dir as quiver train would, and returns its error.
func runTrainer(t *testing.T, dir string) error {
	out := t.TempDir()
	t.Setenv(training.EnvDatasetDir, dir)
	t.Setenv(training.EnvOutputDir, out)
	t.Setenv(training.EnvMetricsFile, filepath.Join(out, "metrics.jsonl"))
	t.Setenv(training.EnvParams, `{"epochs":2,"hidden":2,"lr":0.1,"label":"churned"}`)
	return run(context.Background())
}

// TestTrainerRefusesNonNumericFeatures is issue 22 item 18: a string or bytes feature column
// is refused with an error naming the column, its type and what the trainer takes — it was
// silently read as all-NaN and trained on.
func TestTrainerRefusesNonNumericFeatures(t *testing.T) {
	for _, typ := range []arrow.DataType{arrow.BinaryTypes.String, arrow.BinaryTypes.Binary} {
		t.Run(typ.String(), func(t *testing.T) {
			err := runTrainer(t, writeSnapshot(t, arrow.FixedWidthTypes.Boolean, typ))
			require.Error(t, err)
			require.ErrorContains(t, err, `feature column "user_stats__country" is `+typ.String())
			require.ErrorContains(t, err, "int32, int64, float32, float64 or bool")
		})
	}
	// A label that is not a number is refused too, naming it (it made every row "unlabeled").
	err := runTrainer(t, writeSnapshot(t, arrow.BinaryTypes.String, arrow.PrimitiveTypes.Float64))
	require.ErrorContains(t, err, `label column "churned" is utf8`)

	// Numeric and bool features train.
	require.NoError(t, runTrainer(t, writeSnapshot(t, arrow.FixedWidthTypes.Boolean, arrow.PrimitiveTypes.Float64)))
}
