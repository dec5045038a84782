// Package scaffold writes a new, working feature repo — the examples/shop template: quiver.yaml,
// definitions under features/, generated sample data and labels, and a README. It backs
// `quiver init` and the example's data generator.
package scaffold

import (
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/quiverfs/quiver/examples/shop"
	"github.com/quiverfs/quiver/internal/errkind"
)

// ErrExists is returned when the target directory already holds a feature repo.
var ErrExists = errkind.New(errkind.Usage, "feature repo already exists")

// Options tunes the generated repo.
type Options struct {
	// Project names the project; default: the directory's base name, cleaned to a valid name.
	Project string
	// Users and Days size the sample data; defaults 200 users × 30 days.
	Users, Days int
	// End is the exclusive end of the sample data's event times (UTC midnight); default: today.
	End time.Time
}

// Init writes a new feature repo into dir (created if needed). It refuses to overwrite an
// existing quiver.yaml, and returns the files it wrote, relative to dir.
func Init(dir string, opts Options) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, "quiver.yaml")); err == nil {
		return nil, fmt.Errorf("%w: %s already has a quiver.yaml", ErrExists, dir)
	}
	if opts.Project == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		opts.Project = ProjectName(filepath.Base(abs))
	}
	if opts.Users <= 0 {
		opts.Users = 200
	}
	if opts.Days <= 0 {
		opts.Days = 30
	}
	if opts.End.IsZero() {
		opts.End = time.Now().UTC().Truncate(24 * time.Hour)
	}
	var written []string
	err := fs.WalkDir(shop.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := path
		if rel == "gitignore" { // embed skips dotfiles, so it is stored without the dot
			rel = ".gitignore"
		}
		data, err := shop.Files.ReadFile(path)
		if err != nil {
			return err
		}
		data = []byte(strings.ReplaceAll(string(data), "{{PROJECT}}", opts.Project))
		if err := writeFile(filepath.Join(dir, rel), data); err != nil {
			return err
		}
		written = append(written, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write feature repo: %w", err)
	}
	data, err := WriteShopData(dir, opts.Users, opts.Days, opts.End)
	if err != nil {
		return nil, err
	}
	return append(written, data...), nil
}

// ProjectName turns a directory name into a valid project name.
func ProjectName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	name := b.String()
	if name == "" || (name[0] >= '0' && name[0] <= '9') {
		name = "p_" + name
	}
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// UserActivitySchema is the schema of the sample source: one row per user per day.
var UserActivitySchema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "event_ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "created_ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "clicks_7d", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "spend_30d", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "sessions_7d", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
}, nil)

// LabelsSchema is the schema of the sample labels: entity rows for training.
var LabelsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "churned", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

// CheckoutsSchema is the schema of the sample checkouts: entity rows with a request field
// (cart_value) for the on-demand features of features/churn.yaml.
var CheckoutsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
	{Name: "cart_value", Type: arrow.PrimitiveTypes.Float64},
	{Name: "churned", Type: arrow.FixedWidthTypes.Boolean},
}, nil)

type activity struct {
	ts       time.Time
	clicks   int64
	null     bool
	spend    float64
	sessions int32
}

// WriteShopData writes deterministic sample data under dir/data: user_activity.parquet (for
// each of users users, one row a day over the days days before end, at a user-specific time
// of day; a few clicks are null) and labels.parquet (three label times per user in the second
// half of the period, with churned drawn from a logistic function of the user's features as
// of that time, so a model can learn it). The same arguments always give the same bytes. It
// returns the files written, relative to dir.
func WriteShopData(dir string, users, days int, end time.Time) ([]string, error) {
	rng := rand.New(rand.NewPCG(42, uint64(users)))
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	act := array.NewRecordBuilder(memory.DefaultAllocator, UserActivitySchema)
	defer act.Release()
	lab := array.NewRecordBuilder(memory.DefaultAllocator, LabelsSchema)
	defer lab.Release()
	// Checkouts draw from their own generator, so labels.parquet is as it always was.
	crng := rand.New(rand.NewPCG(7, uint64(users)))
	chk := array.NewRecordBuilder(memory.DefaultAllocator, CheckoutsSchema)
	defer chk.Release()
	for u := 1; u <= users; u++ {
		offset := time.Duration(rng.IntN(24*60)) * time.Minute
		level := 1 + rng.Float64()*9
		rows := make([]activity, days)
		for d := range rows {
			r := activity{
				ts:       start.Add(time.Duration(d)*24*time.Hour + offset),
				clicks:   int64(level*7) + int64(rng.IntN(10)),
				null:     rng.IntN(50) == 0,
				spend:    float64(int(level*30*rng.Float64()*100)) / 100,
				sessions: int32(level) + int32(rng.IntN(3)),
			}
			rows[d] = r
			act.Field(0).(*array.Int64Builder).Append(int64(u))
			act.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(r.ts.UnixMicro()))
			act.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(r.ts.Add(5 * time.Minute).UnixMicro()))
			if r.null {
				act.Field(3).AppendNull()
			} else {
				act.Field(3).(*array.Int64Builder).Append(r.clicks)
			}
			act.Field(4).(*array.Float64Builder).Append(r.spend)
			act.Field(5).(*array.Int32Builder).Append(r.sessions)
		}
		for range 3 {
			// A label time in the second half, strictly after that day's activity row was written.
			d := days/2 + rng.IntN(days-days/2)
			t := rows[d].ts.Add(time.Hour + time.Duration(rng.IntN(12*60))*time.Minute)
			r := rows[d]
			clicks := float64(r.clicks)
			if r.null {
				clicks = 0
			}
			z := 3.0 - 0.06*clicks - 0.004*r.spend - 0.15*float64(r.sessions) + rng.NormFloat64()*0.3
			churned := rng.Float64() < 1/(1+math.Exp(-z))
			lab.Field(0).(*array.Int64Builder).Append(int64(u))
			lab.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
			lab.Field(2).(*array.BooleanBuilder).Append(churned)
			// A checkout at the label time: big carts relative to recent spend churn less.
			cart := float64(int(crng.Float64()*20000)) / 100
			zc := z - 1.5*math.Min(cart/math.Max(r.spend, 1), 3) + 1.5
			chk.Field(0).(*array.Int64Builder).Append(int64(u))
			chk.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
			chk.Field(2).(*array.Float64Builder).Append(cart)
			chk.Field(3).(*array.BooleanBuilder).Append(crng.Float64() < 1/(1+math.Exp(-zc)))
		}
	}
	files := []string{filepath.Join("data", "user_activity.parquet"), filepath.Join("data", "labels.parquet"), filepath.Join("data", "checkouts.parquet")}
	for i, b := range []*array.RecordBuilder{act, lab, chk} {
		rec := b.NewRecordBatch()
		err := writeParquet(filepath.Join(dir, files[i]), rec)
		rec.Release()
		if err != nil {
			return nil, fmt.Errorf("write sample data: %w", err)
		}
	}
	return files, nil
}

// writeParquet writes one record batch to path atomically (a temporary file, then a rename).
func writeParquet(path string, rec arrow.RecordBatch) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(64*1024))
	w, err := pqarrow.NewFileWriter(rec.Schema(), f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		return err
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return err
	}
	if err := w.Close(); err != nil { // closes f too
		return err
	}
	return os.Rename(tmp, path)
}
