// Package scaffold writes a new, working feature repo: quiver.yaml, definitions under
// features/, generated sample data and a README. It backs `quiver init`.
package scaffold

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
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
)

//go:embed template
var template embed.FS

// ErrExists is returned when the target directory already holds a feature repo.
var ErrExists = errors.New("feature repo already exists")

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
	err := fs.WalkDir(template, "template", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(path, "template/")
		if rel == "gitignore" { // embed skips dotfiles, so it is stored without the dot
			rel = ".gitignore"
		}
		data, err := template.ReadFile(path)
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
	data := filepath.Join("data", "user_activity.parquet")
	if err := WriteUserActivity(filepath.Join(dir, data), opts.Users, opts.Days, opts.End); err != nil {
		return nil, err
	}
	return append(written, data), nil
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

// WriteUserActivity writes deterministic sample data: for each of users users, one row a day
// over the days days before end, at a user-specific time of day; a few values are null. The
// same arguments always give the same bytes.
func WriteUserActivity(path string, users, days int, end time.Time) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write sample data: %w", err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, UserActivitySchema)
	defer b.Release()
	rng := rand.New(rand.NewPCG(42, uint64(users)))
	start := end.Add(-time.Duration(days) * 24 * time.Hour)
	for u := 1; u <= users; u++ {
		offset := time.Duration(rng.IntN(24*60)) * time.Minute
		activity := 1 + rng.Float64()*9
		for d := 0; d < days; d++ {
			ts := start.Add(time.Duration(d)*24*time.Hour + offset)
			b.Field(0).(*array.Int64Builder).Append(int64(u))
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.Add(5 * time.Minute).UnixMicro()))
			if rng.IntN(50) == 0 {
				b.Field(3).AppendNull()
			} else {
				b.Field(3).(*array.Int64Builder).Append(int64(activity*7) + int64(rng.IntN(10)))
			}
			b.Field(4).(*array.Float64Builder).Append(float64(int(activity*30*rng.Float64()*100)) / 100)
			b.Field(5).(*array.Int32Builder).Append(int32(activity) + int32(rng.IntN(3)))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()

	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write sample data: %w", err)
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(64*1024))
	w, err := pqarrow.NewFileWriter(UserActivitySchema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		return fmt.Errorf("write sample data: %w", err)
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return fmt.Errorf("write sample data: %w", err)
	}
	if err := w.Close(); err != nil { // closes f too
		return fmt.Errorf("write sample data: %w", err)
	}
	return os.Rename(tmp, path)
}
