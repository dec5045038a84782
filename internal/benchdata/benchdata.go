// Package benchdata writes synthetic feature sources for benchmarks and tests: Parquet files
// of rows (entity_id int64, event_ts, created_ts, f0..fN alternating float64 and int64)
// spread over a number of entities and days. Output is deterministic for a given seed and
// written in row groups, so memory stays flat whatever the size.
package benchdata

import (
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Spec sizes a generated source.
type Spec struct {
	Rows, Entities, Features, Days int
	// End is the exclusive end of the event times; rows spread over the Days before it.
	End  time.Time
	Seed uint64
	// FeaturePrefix names the feature columns (FeaturePrefix0, ...); default "f".
	FeaturePrefix string
}

// Write writes the source to path. Every entity appears at least once when Rows >= Entities;
// further rows revisit random entities.
func Write(path string, s Spec) error {
	if s.Rows <= 0 || s.Entities <= 0 || s.Features < 0 || s.Days <= 0 {
		return fmt.Errorf("benchdata: rows, entities and days must be > 0")
	}
	prefix := s.FeaturePrefix
	if prefix == "" {
		prefix = "f"
	}
	return write(path, s.Rows, s.Entities, s.Features, s.Days, s.End, s.Seed, prefix)
}

func write(path string, rows, entities, features, days int, end time.Time, seed uint64, prefix string) error {
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	fields := []arrow.Field{
		{Name: "entity_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_ts", Type: ts},
		{Name: "created_ts", Type: ts},
	}
	for f := 0; f < features; f++ {
		t := arrow.DataType(arrow.PrimitiveTypes.Float64)
		if f%2 == 1 {
			t = arrow.PrimitiveTypes.Int64
		}
		fields = append(fields, arrow.Field{Name: fmt.Sprintf("%s%d", prefix, f), Type: t, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(256*1024))
	w, err := pqarrow.NewFileWriter(schema, file, props, pqarrow.DefaultWriterProps())
	if err != nil {
		file.Close()
		return err
	}
	rng := rand.New(rand.NewPCG(seed, 99))
	start := end.Add(-time.Duration(days) * 24 * time.Hour).UnixMicro()
	span := end.UnixMicro() - start
	const chunk = 64 * 1024
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for done := 0; done < rows; {
		n := min(chunk, rows-done)
		for i := 0; i < n; i++ {
			// Every entity appears; rows beyond the entity count revisit random entities.
			id := int64((done + i) % entities)
			if done+i >= entities {
				id = int64(rng.IntN(entities))
			}
			ev := start + rng.Int64N(span)
			b.Field(0).(*array.Int64Builder).Append(id)
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ev))
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(ev + 1_000_000))
			for f := 0; f < features; f++ {
				if f%2 == 0 {
					b.Field(3 + f).(*array.Float64Builder).Append(rng.Float64() * 100)
				} else {
					b.Field(3 + f).(*array.Int64Builder).Append(rng.Int64N(1000))
				}
			}
		}
		rec := b.NewRecordBatch()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			w.Close()
			return err
		}
		done += n
	}
	return w.Close()
}

// EntitySpec sizes a generated entity-rows file (the input of dataset create).
type EntitySpec struct {
	Rows, Entities, Days int
	// End is the exclusive end of the event timestamps; rows spread over the Days before it.
	End  time.Time
	Seed uint64
}

// WriteEntities writes entity rows (entity_id int64, event_timestamp timestamp[us, UTC],
// label float64) with random entities and times to path.
func WriteEntities(path string, s EntitySpec) error {
	if s.Rows <= 0 || s.Entities <= 0 || s.Days <= 0 {
		return fmt.Errorf("benchdata: rows, entities and days must be > 0")
	}
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "entity_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_timestamp", Type: ts},
		{Name: "label", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithMaxRowGroupLength(256*1024))
	w, err := pqarrow.NewFileWriter(schema, file, props, pqarrow.DefaultWriterProps())
	if err != nil {
		file.Close()
		return err
	}
	rng := rand.New(rand.NewPCG(s.Seed, 7))
	start := s.End.Add(-time.Duration(s.Days) * 24 * time.Hour).UnixMicro()
	span := s.End.UnixMicro() - start
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	const chunk = 64 * 1024
	for done := 0; done < s.Rows; {
		n := min(chunk, s.Rows-done)
		for range n {
			b.Field(0).(*array.Int64Builder).Append(int64(rng.IntN(s.Entities)))
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(start + rng.Int64N(span)))
			b.Field(2).(*array.Float64Builder).Append(rng.Float64())
		}
		rec := b.NewRecordBatch()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			w.Close()
			return err
		}
		done += n
	}
	return w.Close()
}
