package main

// Issue 26's acceptance test: `quiver import feast` checked against a real Feast 0.67
// (installed from PyPI by scripts/feast.sh, cached). Two Feast repositories — feast init's
// template and the richer testdata/feast/rich — are applied and materialized by Feast,
// imported, applied and materialized by Quiver over the same Parquet files, and Quiver's
// get-online and dataset create are compared with Feast's get_online_features and
// get_historical_features for the same entity rows. Where they differ, each difference is
// one docs/from-feast.md names, asserted as such: TTL on read, created timestamps, history
// backfill, string join keys, full feature names.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/quiverfs/quiver/definitions/feast"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

var feastOnce struct {
	sync.Once
	venv string
	err  error
}

// feastVenv installs Feast (scripts/feast.sh: cached after the first run) and returns the
// virtual environment. Without Python and PyPI the test fails, naming what is missing.
func feastVenv(t *testing.T) string {
	t.Helper()
	feastOnce.Do(func() {
		script, err := filepath.Abs("../../scripts/feast.sh")
		if err != nil {
			feastOnce.err = err
			return
		}
		out, err := exec.Command(script).Output()
		if err != nil {
			var stderr string
			if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
				stderr = string(ee.Stderr)
			}
			feastOnce.err = fmt.Errorf("scripts/feast.sh (needs python3 with venv and PyPI): %v\n%s", err, stderr)
			return
		}
		feastOnce.venv = strings.TrimSpace(string(out))
	})
	require.NoError(t, feastOnce.err)
	return feastOnce.venv
}

// feastAnswers is what testdata/feast/feast_answers.py writes.
type feastAnswers struct {
	Keys   []json.RawMessage `json:"keys"`
	Online map[string]struct {
		Error    string `json:"error"`
		Features []struct {
			Name       string            `json:"name"`
			Values     []json.RawMessage `json:"values"`
			Statuses   []string          `json:"statuses"`
			TimesMicro []int64           `json:"event_timestamps_us"`
		} `json:"features"`
	} `json:"online"`
	Historical map[string]struct {
		Error   string   `json:"error"`
		Columns []string `json:"columns"`
	} `json:"historical"`
	Timings map[string]float64 `json:"timings_s"`
}

// runFeast runs the helper with a spec in the Feast venv.
func runFeast(t *testing.T, venv string, spec map[string]any) feastAnswers {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "answers.json")
	spec["out"] = out
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	specPath := filepath.Join(dir, "spec.json")
	require.NoError(t, os.WriteFile(specPath, b, 0o644))
	helper, err := filepath.Abs("testdata/feast/feast_answers.py")
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(venv, "bin", "python"), helper, specPath)
	cmd.Env = append(os.Environ(), "FEAST_USAGE=False", "PYTHONWARNINGS=ignore", "PATH="+filepath.Join(venv, "bin")+":"+os.Getenv("PATH"))
	cmd.Dir = dir
	combined, err := cmd.CombinedOutput()
	require.NoError(t, err, "feast_answers.py:\n%s", combined)
	var a feastAnswers
	b, err = os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &a))
	t.Logf("feast timings (s): %v", a.Timings)
	return a
}

// cell is one value of a row, normalized across Feast's pandas frames and Quiver's Arrow:
// integers as int64, floats as float64 (a float32 widened exactly), timestamps as UTC
// microseconds, NaN and null as nil.
type cell = any

func normalize(a arrow.Array, i int) cell {
	if a.IsNull(i) {
		return nil
	}
	switch c := a.(type) {
	case *array.Int8:
		return int64(c.Value(i))
	case *array.Int16:
		return int64(c.Value(i))
	case *array.Int32:
		return int64(c.Value(i))
	case *array.Int64:
		return c.Value(i)
	case *array.Float32:
		if math.IsNaN(float64(c.Value(i))) {
			return nil
		}
		return float64(c.Value(i))
	case *array.Float64:
		if math.IsNaN(c.Value(i)) {
			return nil
		}
		return c.Value(i)
	case *array.Boolean:
		return c.Value(i)
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
	case *array.Timestamp:
		unit := c.DataType().(*arrow.TimestampType).Unit
		v := int64(c.Value(i))
		switch unit {
		case arrow.Second:
			return v * 1e6
		case arrow.Millisecond:
			return v * 1e3
		case arrow.Nanosecond:
			return v / 1e3
		}
		return v
	}
	return fmt.Sprintf("unsupported %s", a.DataType())
}

// readRows reads Parquet files into rows keyed by column name.
func readRows(t *testing.T, paths ...string) []map[string]cell {
	t.Helper()
	var out []map[string]cell
	for _, p := range paths {
		f, err := file.OpenParquetFile(p, false)
		require.NoError(t, err)
		fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
		require.NoError(t, err)
		tbl, err := fr.ReadTable(context.Background())
		require.NoError(t, err)
		tr := array.NewTableReader(tbl, 1<<16)
		for tr.Next() {
			rec := tr.RecordBatch()
			for i := range int(rec.NumRows()) {
				row := map[string]cell{}
				for c, col := range rec.Columns() {
					row[rec.ColumnName(c)] = normalize(col, i)
				}
				out = append(out, row)
			}
		}
		tr.Release()
		tbl.Release()
		require.NoError(t, f.Close())
	}
	return out
}

// jsonCell normalizes a value of Feast's online answer.
func jsonCell(raw json.RawMessage) cell {
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || v == nil {
		return nil
	}
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil && !strings.ContainsAny(n.String(), ".eE") {
			return i
		}
		f, _ := n.Float64()
		if math.IsNaN(f) {
			return nil
		}
		return f
	}
	return v
}

// onlineCell is one feature value of one row as a client sees it.
type onlineCell struct {
	value  cell
	status string
	micros int64
}

// quiverOnline reads a get-online -o json answer into cells by feature name.
func quiverOnline(t *testing.T, stdout string) map[string][]onlineCell {
	t.Helper()
	var resp pb.GetOnlineFeaturesResponse
	require.NoError(t, protojson.Unmarshal([]byte(stdout), &resp), stdout)
	out := map[string][]onlineCell{}
	for _, f := range resp.GetFeatures() {
		col := make([]onlineCell, resp.GetRows())
		v := f.GetValues()
		for r := range col {
			c := onlineCell{status: f.GetStatuses()[r].String(), micros: f.GetEventTimestampsMicros()[r]}
			null := len(f.GetNulls()) > 0 && f.GetNulls()[r]
			if !null {
				switch {
				case v.GetInt32Values() != nil:
					c.value = int64(v.GetInt32Values().GetVal()[r])
				case v.GetInt64Values() != nil:
					c.value = v.GetInt64Values().GetVal()[r]
				case v.GetFloatValues() != nil:
					c.value = float64(v.GetFloatValues().GetVal()[r])
				case v.GetDoubleValues() != nil:
					c.value = v.GetDoubleValues().GetVal()[r]
				case v.GetBoolValues() != nil:
					c.value = v.GetBoolValues().GetVal()[r]
				case v.GetStringValues() != nil:
					c.value = v.GetStringValues().GetVal()[r]
				}
				if fv, ok := c.value.(float64); ok && math.IsNaN(fv) {
					c.value = nil
				}
			}
			col[r] = c
		}
		out[f.GetName()] = col
	}
	return out
}

// feastOnline reads one of Feast's online answers into cells by feature name.
func feastOnline(t *testing.T, a feastAnswers, name string) map[string][]onlineCell {
	t.Helper()
	o, ok := a.Online[name]
	require.True(t, ok, "no online answer %q", name)
	require.Empty(t, o.Error, "feast get_online_features %s", name)
	out := map[string][]onlineCell{}
	for _, f := range o.Features {
		col := make([]onlineCell, len(f.Values))
		for r := range col {
			col[r] = onlineCell{value: jsonCell(f.Values[r]), status: f.Statuses[r], micros: f.TimesMicro[r]}
		}
		out[f.Name] = col
	}
	return out
}

// importFeast runs quiver import feast and checks its -o json answer.
func importFeast(t *testing.T, feastRepo, out string) importJSON {
	t.Helper()
	r := quiver(t, nil, "import", "feast", feastRepo, "--out", out, "--dry-run")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "entities:\n")
	require.Contains(t, r.stdout, "Not converted, or not as it was")
	require.NoDirExists(t, out, "--dry-run writes nothing")
	r = quiver(t, nil, "-o", "json", "import", "feast", feastRepo, "--out", out)
	require.Equal(t, exitOK, r.code, r.stderr)
	checkContract(t, "import feast", r.stdout)
	var res importJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	// The written repo validates, and reading the written YAML back gives what was imported.
	r = quiver(t, nil, "-C", out, "validate")
	require.Equal(t, exitOK, r.code, r.stderr)
	again, err := feast.Import(feast.Options{Repo: feastRepo, Out: out})
	require.NoError(t, err)
	files, err := again.Files()
	require.NoError(t, err)
	written, err := os.ReadFile(filepath.Join(out, again.DefinitionsFile()))
	require.NoError(t, err)
	require.Equal(t, string(files[again.DefinitionsFile()]), string(written), "a second import of the same registry writes the same file")
	return res
}

func hasItem(res importJSON, kind, name, field string, action feast.Action) bool {
	for _, it := range res.Report {
		if it.Kind == kind && it.Name == name && it.Field == field && it.Action == action {
			return true
		}
	}
	return false
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func exportDataset(t *testing.T, dir, ref string) []map[string]cell {
	t.Helper()
	to := t.TempDir()
	r := quiver(t, nil, "-C", dir, "dataset", "export", ref, "--to", to)
	require.Equal(t, exitOK, r.code, r.stderr)
	files, err := filepath.Glob(filepath.Join(to, "*.parquet"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sort.Strings(files)
	return readRows(t, files...)
}

// byRowID indexes rows by their row_id column.
func byRowID(t *testing.T, rows []map[string]cell) map[int64]map[string]cell {
	t.Helper()
	out := map[int64]map[string]cell{}
	for _, r := range rows {
		id, ok := r["row_id"].(int64)
		require.True(t, ok, "row without row_id: %v", r)
		out[id] = r
	}
	return out
}

// histDiff is one feature of one entity row on which the two stores differ.
type histDiff struct {
	row           int64
	feature       string
	feast, quiver cell
}

func diffHistorical(t *testing.T, feastRows, quiverRows []map[string]cell, features []string, dropped map[int64][]string) []histDiff {
	t.Helper()
	f, q := byRowID(t, feastRows), byRowID(t, quiverRows)
	// TTL in joins: Feast's file offline store drops an entity row when its entity has rows
	// in a view but none within [T - ttl, T] (all older, or all later); Quiver keeps every
	// entity row, with nulls for that view's features. dropped lists exactly those rows and
	// the features Quiver must answer null.
	missing := map[int64][]string{}
	for id := range q {
		if _, ok := f[id]; !ok {
			missing[id] = dropped[id]
			for _, name := range dropped[id] {
				require.Nil(t, q[id][name], "row %d %s: Feast dropped the row; Quiver keeps it with null", id, name)
			}
		}
	}
	if dropped == nil {
		dropped = map[int64][]string{}
	}
	require.Equal(t, dropped, missing, "entity rows missing from Feast's answer")
	require.Len(t, quiverRows, len(feastRows)+len(dropped), "Quiver keeps every entity row")
	var ids []int64
	for id := range f {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var out []histDiff
	for _, id := range ids {
		qr, ok := q[id]
		require.True(t, ok, "row %d missing from the Quiver dataset", id)
		for _, name := range features {
			fv, ok := f[id][name]
			require.True(t, ok, "feast row has no column %q", name)
			qv, ok := qr[name]
			require.True(t, ok, "quiver row has no column %q", name)
			if !sameCell(fv, qv) {
				out = append(out, histDiff{row: id, feature: name, feast: fv, quiver: qv})
			}
		}
	}
	return out
}

// bareNames names Feast's full-named columns of the given features ("view:feature") by the
// feature alone.
func bareNames(rows []map[string]cell, refs ...string) []map[string]cell {
	for _, row := range rows {
		for _, ref := range refs {
			view, feature, _ := strings.Cut(ref, ":")
			row[feature] = row[view+"__"+feature]
		}
	}
	return rows
}

// sameCell compares normalized values; a pandas int column with a missing value is float.
func sameCell(a, b cell) bool {
	if ai, ok := a.(int64); ok {
		if bf, ok := b.(float64); ok {
			return float64(ai) == bf
		}
	}
	if af, ok := a.(float64); ok {
		if bi, ok := b.(int64); ok {
			return af == float64(bi)
		}
	}
	return a == b
}

// TestImportFeastMatchesFeast is the acceptance test of issue 26.
func TestImportFeastMatchesFeast(t *testing.T) {
	venv := feastVenv(t)
	t.Run("template", func(t *testing.T) {
		t.Parallel()
		testFeastTemplate(t, venv)
	})
	t.Run("rich", func(t *testing.T) {
		t.Parallel()
		testFeastRich(t, venv)
	})
}

// testFeastTemplate: feast init's own template, imported as it is.
func testFeastTemplate(t *testing.T, venv string) {
	base := t.TempDir()
	feastRepo := filepath.Join(base, "demo", "feature_repo")
	now := time.Now().UTC()
	start := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	end := now.Truncate(time.Second)
	entities := filepath.Join(base, "entities.parquet")
	feastHist := filepath.Join(base, "feast_v2.parquet")
	request := map[string]any{"val_to_add": 10, "val_to_add_2": 20}
	a := runFeast(t, venv, map[string]any{
		"repo":        feastRepo,
		"init":        map[string]any{"dir": base, "name": "demo"},
		"materialize": []string{rfc(start), rfc(end)},
		"build_entities": map[string]any{"from": "data/driver_stats.parquet", "key": "driver_id", "path": entities, "request": request,
			"times": []string{"2021-04-12T10:59:42Z", rfc(now.Add(-72 * time.Hour)), rfc(now.Add(-time.Hour))}},
		"online":     []map[string]any{{"name": "v1", "service": "driver_activity_v1"}},
		"historical": []map[string]any{{"name": "v2", "service": "driver_activity_v2", "entities": entities, "out": feastHist}},
	})
	require.NotEmpty(t, a.Keys)

	out := filepath.Join(base, "quiver")
	res := importFeast(t, feastRepo, out)
	require.Equal(t, "demo", res.Project)
	require.Equal(t, map[string]int{"entity": 1, "source": 4, "request_source": 1, "feature_view": 2, "on_demand_feature_view": 2, "feature_service": 3}, res.Objects)
	// What the template holds that Quiver has no equivalent for is reported, not dropped.
	for _, f := range []string{"features.driver_metadata", "features.driver_profile"} {
		require.True(t, hasItem(res, "feature_view", "driver_hourly_stats", f, feast.Skipped), f)
	}
	require.True(t, hasItem(res, "feature_view", "driver_hourly_stats", "features.driver_config", feast.Changed))
	require.True(t, hasItem(res, "on_demand_feature_view", "transformed_conv_rate", "feature_transformation", feast.Translated))
	require.True(t, hasItem(res, "label_view", "driver_quality_labels", "", feast.Skipped))
	require.True(t, hasItem(res, "feature_service", "driver_activity_v1", "logging_config", feast.Skipped))
	require.True(t, hasItem(res, "data_source", "driver_stats_push_source", "batch_source", feast.Manual))

	r := quiver(t, nil, "-C", out, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", out, "materialize", "--start", rfc(start), "--end", rfc(end.Add(time.Second)), "driver_hourly_stats")
	require.Equal(t, exitOK, r.code, r.stderr)

	// Online, the service with the translated on-demand view, for every driver.
	args := []string{"-C", out, "-o", "json", "get-online", "--service", "driver_activity_v1"}
	for _, k := range a.Keys {
		args = append(args, "--entity", "driver_id="+string(k), "--request", "val_to_add=10", "--request", "val_to_add_2=20")
	}
	r = quiver(t, nil, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	q, f := quiverOnline(t, r.stdout), feastOnline(t, a, "v1")
	for name, qc := range q {
		fc, ok := f[name]
		require.True(t, ok, "feast answered no %s", name)
		for i := range qc {
			require.True(t, sameCell(fc[i].value, qc[i].value), "%s row %d: feast %v, quiver %v", name, i, fc[i].value, qc[i].value)
			require.Equal(t, fc[i].status, qc[i].status, "%s row %d", name, i)
		}
	}

	// Offline: the same entity rows, Feast's point-in-time join against Quiver's dataset.
	r = quiver(t, nil, "-C", out, "dataset", "create", "v2", "--service", "driver_activity_v2", "--entities", entities)
	require.Equal(t, exitOK, r.code, r.stderr)
	feats := []string{"conv_rate", "acc_rate", "avg_daily_trips", "driver_config", "conv_rate_plus_val1", "conv_rate_plus_val2"}
	diffs := diffHistorical(t, readRows(t, feastHist), exportDataset(t, out, "v2@v1"), feats, nil)
	require.Empty(t, diffs, "the template's history is all materialized: the joins agree")
}

// The richer repository's data, relative to now: see writeRichData.
const (
	richUsers     = 100
	richMerchants = 20
)

func merchantOf(u int) string { return strconv.Itoa(1000 + u%22 + 1) } // 1021 and 1022 have no data

// writeRichData writes the rich repository's Parquet files and entity rows:
//   - user_stats: every 6h over 10 days per user; users 91-100 stop 3.25 days ago (past the
//     2-day TTL); users 1-5 have their latest row twice, the second-created one written first
//     (ties are broken by created); users 6-10 have a correction of one row created 30
//     minutes ago (late data); user 17's latest spend is null.
//   - merchant_stats (string keys that look like numbers, no created column): every 12h.
//   - user_txn, the push source's batch file (exactly the view's columns): every 8h for users
//     1-80; users 71-80 stop 2.3 days ago (past the 1-day TTL).
//   - entities.parquet: each user 8 days and 3 hours ago, 51 hours ago and an hour ago (none
//     within minutes after a row, so created times never straddle an entity row's time), and
//     user 1 once more, before any data.
func writeRichData(t *testing.T, data string, now time.Time) (entities string, ties map[int64]tie, staleStats, staleTxn []int64, beforeData int64) {
	t.Helper()
	us := func(tm time.Time) arrow.Timestamp { return arrow.Timestamp(tm.UnixMicro()) }
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	write := func(name string, schema *arrow.Schema, fill func(b *array.RecordBuilder)) {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		fill(b)
		rec := b.NewRecordBatch()
		defer rec.Release()
		f, err := os.Create(filepath.Join(data, name))
		require.NoError(t, err)
		w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
		require.NoError(t, err)
		require.NoError(t, w.Write(rec))
		require.NoError(t, w.Close())
	}
	start := now.Add(-10 * 24 * time.Hour)
	write("user_stats.parquet", arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_timestamp", Type: ts}, {Name: "created", Type: ts},
		{Name: "clicks", Type: arrow.PrimitiveTypes.Int64, Nullable: true}, {Name: "spend", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float32, Nullable: true}, {Name: "active", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "segment", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil), func(b *array.RecordBuilder) {
		add := func(u, k int, ev, cr time.Time, bump int, nullSpend bool) {
			v := statsValues(u, k, bump)
			b.Field(0).(*array.Int64Builder).Append(int64(u))
			b.Field(1).(*array.TimestampBuilder).Append(us(ev))
			b.Field(2).(*array.TimestampBuilder).Append(us(cr))
			b.Field(3).(*array.Int64Builder).Append(v["clicks"].(int64))
			if nullSpend {
				b.Field(4).AppendNull()
			} else {
				b.Field(4).(*array.Float64Builder).Append(v["spend"].(float64))
			}
			b.Field(5).(*array.Float32Builder).Append(float32(v["score"].(float64)))
			b.Field(6).(*array.BooleanBuilder).Append(v["active"].(bool))
			b.Field(7).(*array.StringBuilder).Append(v["segment"].(string))
		}
		for u := 1; u <= richUsers; u++ {
			last := 39
			if u > 90 {
				last = 27
			}
			for k := 0; k <= last; k++ {
				ev := start.Add(time.Duration(k)*6*time.Hour + time.Duration(u%6)*10*time.Minute)
				if u <= 5 && k == last {
					add(u, k, ev, ev.Add(10*time.Minute), 100, false) // the winner: created later, written first
				}
				add(u, k, ev, ev.Add(5*time.Minute), 0, u == 17 && k == last)
				if u >= 6 && u <= 10 && k == 31 {
					add(u, k, ev, now.Add(-30*time.Minute), 200, false) // a late correction
				}
			}
		}
	})
	write("merchant_stats.parquet", arrow.NewSchema([]arrow.Field{
		{Name: "merchant_id", Type: arrow.BinaryTypes.String}, {Name: "event_timestamp", Type: ts},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true}, {Name: "orders", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	}, nil), func(b *array.RecordBuilder) {
		for m := 1; m <= richMerchants; m++ {
			for j := 0; j < 20; j++ {
				b.Field(0).(*array.StringBuilder).Append(strconv.Itoa(1000 + m))
				b.Field(1).(*array.TimestampBuilder).Append(us(start.Add(time.Duration(j)*12*time.Hour + time.Duration(m)*7*time.Minute)))
				b.Field(2).(*array.Float64Builder).Append(float64(m)*0.1 + float64(j))
				b.Field(3).(*array.Int32Builder).Append(int32(m*10 + j))
			}
		}
	})
	write("user_txn.parquet", arrow.NewSchema([]arrow.Field{
		{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_timestamp", Type: ts},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil), func(b *array.RecordBuilder) {
		for u := 1; u <= 80; u++ {
			last := 29
			if u > 70 {
				last = 23
			}
			for i := 0; i <= last; i++ {
				b.Field(0).(*array.Int64Builder).Append(int64(u))
				b.Field(1).(*array.TimestampBuilder).Append(us(start.Add(time.Duration(i)*8*time.Hour + time.Duration(u)*3*time.Minute)))
				b.Field(2).(*array.Float64Builder).Append(float64(u) + float64(i)*0.5)
			}
		}
	})
	ties = map[int64]tie{}
	entities = filepath.Join(filepath.Dir(data), "..", "entities.parquet")
	write("../../entities.parquet", arrow.NewSchema([]arrow.Field{
		{Name: "row_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "user_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "merchant_id", Type: arrow.BinaryTypes.String}, {Name: "event_timestamp", Type: ts},
		{Name: "amount_req", Type: arrow.PrimitiveTypes.Float64}, {Name: "label", Type: arrow.PrimitiveTypes.Int64},
	}, nil), func(b *array.RecordBuilder) {
		id := int64(0)
		for u := 1; u <= richUsers; u++ {
			for _, at := range []time.Duration{-8*24*time.Hour - 3*time.Hour, -51 * time.Hour, -time.Hour} {
				amountReq := float64(id) * 0.75
				b.Field(0).(*array.Int64Builder).Append(id)
				b.Field(1).(*array.Int64Builder).Append(int64(u))
				b.Field(2).(*array.StringBuilder).Append(merchantOf(u))
				b.Field(3).(*array.TimestampBuilder).Append(us(now.Add(at)))
				b.Field(4).(*array.Float64Builder).Append(amountReq)
				b.Field(5).(*array.Int64Builder).Append(id % 2)
				if u <= 5 && at == -time.Hour {
					// Its user_stats match is the latest row, there twice.
					ties[id] = tie{winner: odfv(statsValues(u, 39, 100), amountReq), other: odfv(statsValues(u, 39, 0), amountReq)}
				}
				if u >= 6 && u <= 10 && at == -51*time.Hour {
					// Its user_stats match is row 31, corrected after the entity row's time.
					ties[id] = tie{winner: odfv(statsValues(u, 31, 200), amountReq), other: odfv(statsValues(u, 31, 0), amountReq), late: true}
				}
				if at == -time.Hour && u > 90 {
					staleStats = append(staleStats, id) // user_stats rows, none within its 2-day TTL
				}
				if at == -time.Hour && u > 70 && u <= 80 {
					staleTxn = append(staleTxn, id) // user_txn rows, none within its 1-day TTL
				}
				id++
			}
		}
		// User 1 before any of its rows: no row of any view within the TTL before it.
		b.Field(0).(*array.Int64Builder).Append(id)
		b.Field(1).(*array.Int64Builder).Append(1)
		b.Field(2).(*array.StringBuilder).Append(merchantOf(1))
		b.Field(3).(*array.TimestampBuilder).Append(us(start.Add(-2 * time.Hour)))
		b.Field(4).(*array.Float64Builder).Append(1)
		b.Field(5).(*array.Int64Builder).Append(0)
		beforeData = id
	})
	return filepath.Clean(entities), ties, staleStats, staleTxn, beforeData
}

// statsValues are the features of user u's k-th user_stats row (bump makes a variant).
func statsValues(u, k, bump int) map[string]cell {
	return map[string]cell{
		"clicks":  int64((u*7 + k*3 + bump) % 50),
		"spend":   float64(u)*1.5 + float64(k)*0.25 + float64(bump),
		"score":   float64(float32(u%10)/10 + float32(k)*0.01 + float32(bump)),
		"active":  (u+k+bump)%3 == 0,
		"segment": []string{"a", "b", "c"}[(u+k+bump)%3],
	}
}

// odfv adds txn_features' values to a user_stats row's, as pandas computes them, and renames
// score user_score (fraud_v1's score is the merchant's).
func odfv(v map[string]cell, amountReq float64) map[string]cell {
	v["spend_per_click"] = v["spend"].(float64) / float64(v["clicks"].(int64)+1)
	v["amount_over_spend"] = amountReq - v["spend"].(float64)*2
	v["user_score"] = v["score"]
	delete(v, "score")
	return v
}

// tie is an entity row whose user_stats match is one of two rows with the same event time:
// winner was created later (a late correction when late), other earlier.
type tie struct {
	winner, other map[string]cell
	late          bool
}

// checkTies checks diffs between Feast and Quiver that are ties on the event time. Quiver
// takes the row created last, always; Feast's file offline store sorts by created time and
// then by event time, and its second sort is not stable, so it takes either row. Every
// other diff is returned.
func checkTies(t *testing.T, diffs []histDiff, ties map[int64]tie) []histDiff {
	t.Helper()
	var rest []histDiff
	for _, d := range diffs {
		tt, ok := ties[d.row]
		if !ok || tt.winner[d.feature] == nil {
			rest = append(rest, d)
			continue
		}
		require.True(t, sameCell(tt.winner[d.feature], d.quiver), "row %d %s: quiver %v, want the later-created row's %v", d.row, d.feature, d.quiver, tt.winner[d.feature])
		require.True(t, sameCell(tt.other[d.feature], d.feast), "row %d %s: feast %v is neither tied row's", d.row, d.feature, d.feast)
	}
	return rest
}

// copyDir copies the rich Feast repository's files.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(to, "data"), 0o755))
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o644))
	}
}

// testFeastRich: two entities (one with a string key), a push source, an on-demand view, two
// feature services; every difference with Feast asserted as the one the doc names.
func testFeastRich(t *testing.T, venv string) {
	base := t.TempDir()
	feastRepo := filepath.Join(base, "shop", "feature_repo")
	copyDir(t, "testdata/feast/rich", feastRepo)
	now := time.Now().UTC().Truncate(time.Second)
	entities, ties, staleStats, staleTxn, beforeData := writeRichData(t, filepath.Join(feastRepo, "data"), now)
	staleRows := map[int64][]string{beforeData: {"clicks", "spend", "active", "segment", "spend_per_click", "amount_over_spend", "score", "orders", "amount"}}
	staleScores := map[int64][]string{beforeData: {"score"}}
	for _, id := range staleStats {
		staleRows[id] = []string{"clicks", "spend", "active", "segment", "spend_per_click", "amount_over_spend"}
		staleScores[id] = []string{"score"}
	}
	for _, id := range staleTxn {
		staleRows[id] = []string{"amount"}
	}
	require.FileExists(t, entities)

	onlineRows := make([]map[string]any, 0, richUsers)
	numberKeyRows := make([]map[string]any, 0, 10)
	for u := 1; u <= richUsers; u++ {
		onlineRows = append(onlineRows, map[string]any{"user_id": u, "merchant_id": merchantOf(u), "amount_req": float64(u) * 2.5})
		if u <= 10 {
			m, _ := strconv.Atoi(merchantOf(u))
			numberKeyRows = append(numberKeyRows, map[string]any{"merchant_id": m}) // the key as a number
		}
	}
	numKeys, strKeys, csvKeys := writeMerchantKeys(t, base, now)
	feastStart := now.Add(-11 * 24 * time.Hour)
	hist := func(name string) string { return filepath.Join(base, "feast_"+name+".parquet") }
	a := runFeast(t, venv, map[string]any{
		"repo":        feastRepo,
		"materialize": []string{rfc(feastStart), rfc(now)},
		"online": []map[string]any{
			{"name": "fraud", "service": "fraud_v1", "rows": onlineRows},
			{"name": "merchant_as_number", "service": "merchants", "rows": numberKeyRows},
		},
		"historical": []map[string]any{
			{"name": "fraud", "service": "fraud_v1", "entities": entities, "out": hist("fraud"), "full_feature_names": true},
			{"name": "fraud_bare", "service": "fraud_v1", "entities": entities, "out": hist("fraud_bare")},
			{"name": "scores_bare", "service": "scores_v1", "entities": entities, "out": hist("scores_bare")},
			{"name": "scores_full", "service": "scores_v1", "entities": entities, "out": hist("scores_full"), "full_feature_names": true},
			{"name": "merchant_as_number", "service": "merchants", "entities": numKeys, "out": hist("merchant_as_number")},
			{"name": "merchant_as_string", "service": "merchants", "entities": strKeys, "out": hist("merchant_as_string")},
		},
	})

	out := filepath.Join(base, "quiver")
	res := importFeast(t, feastRepo, out)
	require.Equal(t, map[string]int{"entity": 2, "source": 4, "request_source": 1, "feature_view": 3, "on_demand_feature_view": 1, "feature_service": 3}, res.Objects)
	require.True(t, hasItem(res, "on_demand_feature_view", "txn_features", "feature_transformation", feast.Translated))
	require.True(t, hasItem(res, "data_source", "txn_push", "batch_source", feast.Manual))
	require.True(t, hasItem(res, "feature_service", "scores_v1", "features.merchant_stats.score", feast.Skipped))
	defs, err := os.ReadFile(filepath.Join(out, "features", "feast_shop.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(defs), "expr: user_stats.spend / double(user_stats.clicks + 1)")
	require.Contains(t, string(defs), "expr: txn_request.amount_req - user_stats.spend * 2.0")
	require.Contains(t, string(defs), "owner: growth@shop")

	r := quiver(t, nil, "-C", out, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	// Quiver's stores hold what it materializes: first the last 4 days only, as a first
	// materialize-incremental would; the push view's history is pushed, as the report says.
	windowStart := now.Add(-4 * 24 * time.Hour)
	r = quiver(t, nil, "-C", out, "materialize", "--start", rfc(windowStart), "--end", rfc(now.Add(time.Minute)))
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", out, "push", "user_txn", filepath.Join(feastRepo, "data", "user_txn.parquet"))
	require.Equal(t, exitOK, r.code, r.stderr)

	// Online, 100 entities: equal, except TTL on read.
	args := []string{"-C", out, "-o", "json", "get-online", "--service", "fraud_v1"}
	for _, row := range onlineRows {
		args = append(args, "--entity", fmt.Sprintf("user_id=%d", row["user_id"]), "--entity", "merchant_id="+row["merchant_id"].(string),
			"--request", fmt.Sprintf("amount_req=%v", row["amount_req"]))
	}
	r = quiver(t, nil, args...)
	require.Equal(t, exitOK, r.code, r.stderr)
	q, f := quiverOnline(t, r.stdout), feastOnline(t, a, "fraud")
	ttl := map[string]time.Duration{"clicks": 48 * time.Hour, "spend": 48 * time.Hour, "active": 48 * time.Hour, "segment": 48 * time.Hour, "amount": 24 * time.Hour}
	odfvInputs := []string{"spend", "clicks"} // txn_features reads user_stats
	stale, nans := map[string]int{}, map[string]int{}
	require.Len(t, q, 9)
	for name, qc := range q {
		fc, ok := f[name]
		require.True(t, ok, "feast answered no %s", name)
		require.Len(t, qc, richUsers)
		for i := range qc {
			fv, qv := fc[i], qc[i]
			if u := i + 1; u <= 5 {
				// Created timestamps: users 1-5 have their latest row twice, with one event time.
				// Quiver's online store keeps the row created last (the stale-write guard compares
				// event and created times); Feast's materialization sorts by created time and then
				// by event time, and the second sort is not stable, so it may keep either.
				winner, other := odfv(statsValues(u, 39, 100), float64(u)*2.5), odfv(statsValues(u, 39, 0), float64(u)*2.5)
				if w, ok := winner[name]; ok {
					require.True(t, sameCell(w, qv.value), "%s row %d: quiver %v, want the later-created row's %v", name, i, qv.value, w)
					require.True(t, sameCell(w, fv.value) || sameCell(other[name], fv.value), "%s row %d: feast %v is neither tied row's", name, i, fv.value)
					continue
				}
			}
			switch {
			case fv.status == "PRESENT" && (fv.value == nil || fv.value == "NaN") && qv.value == nil:
				// Null values: Feast answers a stored null PRESENT, with no value (and an
				// on-demand feature computed from it NaN); Quiver answers NULL_VALUE, and null
				// through CEL's null rule.
				if name != "spend_per_click" && name != "amount_over_spend" {
					require.Equal(t, "NULL_VALUE", qv.status, "%s row %d", name, i)
				}
				nans[name]++
			case qv.status == "OUTSIDE_MAX_AGE":
				// TTL on read: Quiver marks a value older than the view's TTL; Feast's online read
				// does not look at the TTL and answers PRESENT. The value is the same.
				require.Equal(t, "PRESENT", fv.status, "%s row %d", name, i)
				require.True(t, sameCell(fv.value, qv.value), "%s row %d: feast %v, quiver %v", name, i, fv.value, qv.value)
				require.Equal(t, fv.micros, qv.micros, "%s row %d", name, i)
				require.Less(t, qv.micros, now.Add(-ttl[name]).UnixMicro(), "%s row %d is past its TTL", name, i)
				stale[name]++
			case name == "spend_per_click" || name == "amount_over_spend":
				if q[odfvInputs[0]][i].status == "OUTSIDE_MAX_AGE" || q[odfvInputs[1]][i].status == "OUTSIDE_MAX_AGE" {
					// TTL on read again: an input past its TTL is null to the CEL (null rule), so
					// the on-demand feature is null; Feast computes it from the stale value.
					require.Nil(t, qv.value, "%s row %d", name, i)
					require.NotNil(t, fv.value, "%s row %d", name, i)
					stale[name]++
					continue
				}
				require.True(t, sameCell(fv.value, qv.value), "%s row %d: feast %v, quiver %v", name, i, fv.value, qv.value)
			default:
				require.Equal(t, fv.status, qv.status, "%s row %d", name, i)
				require.True(t, sameCell(fv.value, qv.value), "%s row %d: feast %v, quiver %v", name, i, fv.value, qv.value)
				if fv.status == "PRESENT" {
					require.Equal(t, fv.micros, qv.micros, "%s row %d", name, i)
				}
			}
		}
	}
	require.Equal(t, map[string]int{"clicks": 10, "spend": 10, "active": 10, "segment": 10, "amount": 10, "spend_per_click": 10, "amount_over_spend": 10}, stale)
	require.Equal(t, map[string]int{"spend": 1, "spend_per_click": 1, "amount_over_spend": 1}, nans, "user 17's latest spend is null")

	// String join keys that look like numbers ("1003"). Online, both convert a number given
	// for a string key. Offline, Feast joins pandas frames: an entity column read as numbers
	// (as pandas reads 1003 from a CSV file) is refused; Quiver reads a CSV entity file's
	// keys as the declared type, so the same file works, and a Parquet column of numbers is
	// refused naming the column.
	for i, c := range feastOnline(t, a, "merchant_as_number")["score"] {
		require.Equal(t, "PRESENT", c.status, "row %d", i)
	}
	r = quiver(t, nil, "-C", out, "-o", "json", "get-online", "--service", "merchants", "--entity", "merchant_id=1003")
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Equal(t, "PRESENT", quiverOnline(t, r.stdout)["score"][0].status)
	require.Contains(t, a.Historical["merchant_as_number"].Error, "merge on int64 and object columns for key 'merchant_id'")
	r = quiver(t, nil, "-C", out, "dataset", "create", "merchants", "--service", "merchants", "--entities", numKeys)
	require.Equal(t, exitInvalid, r.code, r.stderr)
	require.Contains(t, r.stderr, "merchant_id")
	r = quiver(t, nil, "-C", out, "dataset", "create", "merchants", "--service", "merchants", "--entities", csvKeys)
	require.Equal(t, exitOK, r.code, r.stderr)
	require.Empty(t, diffHistorical(t, readRows(t, hist("merchant_as_string")), exportDataset(t, out, "merchants@v1"), []string{"score", "orders"}, nil))

	// Offline, the same 300 entity rows.
	features := []string{"clicks", "spend", "active", "segment", "score", "orders", "amount", "spend_per_click", "amount_over_spend"}
	feastRows := bareNames(readRows(t, hist("fraud")), "user_stats:clicks", "user_stats:spend", "user_stats:active", "user_stats:segment",
		"merchant_stats:score", "merchant_stats:orders", "user_txn:amount", "txn_features:spend_per_click", "txn_features:amount_over_spend")
	r = quiver(t, nil, "-C", out, "dataset", "create", "fraud", "--service", "fraud_v1", "--entities", entities)
	require.Equal(t, exitOK, r.code, r.stderr)
	// History backfill: Quiver joins its offline store, which holds what was materialized
	// (the last 4 days); Feast joins the source files. Rows whose match is older are null.
	diffs := checkTies(t, diffHistorical(t, feastRows, exportDataset(t, out, "fraud@v1"), features, staleRows), ties)
	require.NotEmpty(t, diffs)
	feastByID := byRowID(t, feastRows)
	for _, d := range diffs {
		require.Nil(t, d.quiver, "row %d %s: feast %v, quiver %v", d.row, d.feature, d.feast, d.quiver)
		require.NotNil(t, d.feast, "row %d %s", d.row, d.feature)
		rowTime := time.UnixMicro(feastByID[d.row]["event_timestamp"].(int64))
		require.True(t, rowTime.Before(windowStart), "row %d (%s) %s: only rows before the materialized window miss history", d.row, rowTime, d.feature)
		require.NotEqual(t, "amount", d.feature, "the push view's history was pushed")
	}
	// ... and after the backfill the joins agree on every row and feature: ties broken by
	// created, late corrections included, TTLs applied alike, nulls where neither matches.
	r = quiver(t, nil, "-C", out, "materialize", "--start", rfc(feastStart), "--end", rfc(windowStart))
	require.Equal(t, exitOK, r.code, r.stderr)
	r = quiver(t, nil, "-C", out, "dataset", "create", "fraud", "--service", "fraud_v1", "--entities", entities)
	require.Equal(t, exitOK, r.code, r.stderr)
	quiverRows := exportDataset(t, out, "fraud@v2")
	require.Empty(t, checkTies(t, diffHistorical(t, feastRows, quiverRows, features, staleRows), ties))
	// Created timestamps: on every tie Quiver took the row created last.
	byID := byRowID(t, quiverRows)
	for id, tt := range ties {
		for _, name := range features {
			if w, ok := tt.winner[name]; ok {
				require.True(t, sameCell(w, byID[id][name]), "row %d %s", id, name)
			}
		}
	}

	// Created timestamps: --created-cutoff, which Feast does not have, leaves out rows created
	// after the entity row's time: exactly the late corrections change, to the row created in
	// time.
	r = quiver(t, nil, "-C", out, "dataset", "create", "fraud_cutoff", "--service", "fraud_v1", "--entities", entities, "--created-cutoff")
	require.Equal(t, exitOK, r.code, r.stderr)
	late := map[int64]bool{}
	for id, tt := range ties {
		if tt.late {
			late[id] = true
		}
	}
	rows := map[int64]bool{}
	for _, d := range diffHistorical(t, quiverRows, exportDataset(t, out, "fraud_cutoff@v1"), features, nil) {
		rows[d.row] = true
		require.True(t, sameCell(ties[d.row].other[d.feature], d.quiver), "row %d %s: the row created in time", d.row, d.feature)
	}
	require.Equal(t, late, rows)

	// Full feature names: Feast refuses scores_v1 without them (score from two views); the
	// import kept user_stats:score and reported merchant_stats:score; Quiver's column score
	// is Feast's user_stats__score.
	require.Contains(t, a.Historical["scores_bare"].Error, "score")
	require.Contains(t, a.Historical["scores_full"].Columns, "user_stats__score")
	r = quiver(t, nil, "-C", out, "dataset", "create", "scores", "--service", "scores_v1", "--entities", entities)
	require.Equal(t, exitOK, r.code, r.stderr)
	full := readRows(t, hist("scores_full"))
	for _, row := range full {
		row["score"] = row["user_stats__score"]
	}
	scoreTies := map[int64]tie{}
	for id, tt := range ties {
		scoreTies[id] = tie{winner: map[string]cell{"score": tt.winner["user_score"]}, other: map[string]cell{"score": tt.other["user_score"]}}
	}
	require.Empty(t, checkTies(t, diffHistorical(t, full, exportDataset(t, out, "scores@v1"), []string{"score"}, staleScores), scoreTies))
	// Without full names Feast's frame can also be wrong silently: fraud_v1 selects score
	// from merchant_stats only, but its on-demand view reads user_stats, whose score then
	// shadows the merchant's in the bare-named frame. Quiver checks names at validate time.
	userScore := byRowID(t, full)
	shadowed := 0
	for _, row := range readRows(t, hist("fraud_bare")) {
		id := row["row_id"].(int64)
		if _, ok := ties[id]; ok {
			continue // two Feast calls may break a tie differently
		}
		require.True(t, sameCell(userScore[id]["user_stats__score"], row["score"]), "row %d: feast's bare score is user_stats's", id)
		if !sameCell(feastByID[id]["score"], row["score"]) {
			shadowed++
		}
	}
	require.Greater(t, shadowed, 100)
}

// writeMerchantKeys writes the same entity rows of merchants three ways: a Parquet file whose
// merchant_id column holds the keys as numbers (as pandas reads "1003" from a CSV file), one
// that holds them as strings, and a CSV file.
func writeMerchantKeys(t *testing.T, dir string, now time.Time) (numbers, strs, csv string) {
	t.Helper()
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	at := now.Add(-time.Hour)
	write := func(name string, key arrow.DataType) string {
		schema := arrow.NewSchema([]arrow.Field{{Name: "row_id", Type: arrow.PrimitiveTypes.Int64},
			{Name: "merchant_id", Type: key}, {Name: "event_timestamp", Type: ts}}, nil)
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		for i := range 22 {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
			if key == arrow.PrimitiveTypes.Int64 {
				b.Field(1).(*array.Int64Builder).Append(int64(1001 + i))
			} else {
				b.Field(1).(*array.StringBuilder).Append(strconv.Itoa(1001 + i))
			}
			b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(at.UnixMicro()))
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		require.NoError(t, err)
		w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
		require.NoError(t, err)
		require.NoError(t, w.Write(rec))
		require.NoError(t, w.Close())
		return path
	}
	numbers = write("merchant_keys_numbers.parquet", arrow.PrimitiveTypes.Int64)
	strs = write("merchant_keys_strings.parquet", arrow.BinaryTypes.String)
	var b strings.Builder
	b.WriteString("row_id,merchant_id,event_timestamp\n")
	for i := range 22 {
		fmt.Fprintf(&b, "%d,%d,%s\n", i, 1001+i, at.Format(time.RFC3339Nano))
	}
	csv = filepath.Join(dir, "merchant_keys.csv")
	require.NoError(t, os.WriteFile(csv, []byte(b.String()), 0o644))
	return numbers, strs, csv
}

// TestImportFeastErrors: what cannot be imported is refused with exit 1 (kind invalid), a
// message naming the file and what would be valid, and nothing written.
func TestImportFeastErrors(t *testing.T) {
	notFeast := t.TempDir()
	s3 := t.TempDir()
	writeFile(t, filepath.Join(s3, "feature_store.yaml"), "project: shop\nregistry: s3://bucket/registry.pb\n")
	notApplied := t.TempDir()
	writeFile(t, filepath.Join(notApplied, "feature_store.yaml"), "project: shop\nregistry: data/registry.db\n")
	cases := []struct {
		name, repo string
		args       []string
		msg        string
	}{
		{"not a feast repository", notFeast, nil, "has no feature_store.yaml"},
		{"registry in an object store", s3, nil, `names registry "s3://bucket/registry.pb", which is not a local file`},
		{"not applied", notApplied, nil, "registry.db does not exist: run feast apply"},
		{"registry flag", s3, []string{"--registry", filepath.Join(notApplied, "missing.db")}, "missing.db does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "q")
			r := quiver(t, nil, append([]string{"-o", "json", "import", "feast", tc.repo, "--out", out}, tc.args...)...)
			require.Equal(t, exitInvalid, r.code, r.stderr)
			e := checkErrorJSON(t, "import feast", r)
			require.Equal(t, kindInvalid, e.Kind)
			require.Contains(t, e.Error, tc.msg)
			require.NoDirExists(t, out)
		})
	}
	r := quiver(t, nil, "import", "feast")
	require.Equal(t, exitUsage, r.code, r.stderr)
}
