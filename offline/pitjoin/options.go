package pitjoin

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DefaultEventTimestampColumn is the entity rows' timestamp column unless Options say otherwise.
const DefaultEventTimestampColumn = "event_timestamp"

// Canonical feature-row column names.
const (
	EventTSColumn   = "event_ts"
	CreatedTSColumn = "created_ts"
)

// OpenFunc opens a view's feature rows. The engine calls it once per Join, after reading the
// entity rows, and releases the reader when done with it. Rows whose event_ts is outside r can
// never match; the reader may skip them (time-range pruning) but need not.
type OpenFunc func(ctx context.Context, r EventRange) (array.RecordReader, error)

// EventRange is the range of event_ts, both ends inclusive, that a view's feature rows need to
// match some entity row: from the earliest entity timestamp minus the view's TTL to the latest
// entity timestamp. A zero From means no lower bound (no TTL). Empty means no entity row can
// match at all (the reader is still opened, for its schema).
type EventRange struct {
	From, To time.Time
	Empty    bool
}

// View is one feature view to join onto the entity rows.
type View struct {
	// Name names the view in errors and in full feature names (view__feature).
	Name string
	// JoinKeys are the key column names, the same on the entity and the feature side. A view may
	// use any subset of the entity columns; several keys make a composite key.
	JoinKeys []string
	// TTL bounds how old a feature row may be: event_ts >= T - TTL. Zero or less means no bound.
	TTL time.Duration
	// Features are the feature columns to attach, in output order. They must exist in the feature
	// rows; their Arrow types pass through unchanged.
	Features []string
	// Open returns the view's feature rows: the join keys, event_ts, created_ts (optional,
	// may be null) and the features, in any order, unsorted.
	Open OpenFunc
	// Aggregations, when set, make the view's output instead of Features and TTL: windowed
	// aggregations over its rows as raw events (agg.go).
	Aggregations []Aggregation
}

// Options tune a Join. The zero value is usable: see each field for its default.
type Options struct {
	// MemoryBudget is the peak memory, in bytes, the join should stay near. Past it, candidate
	// feature rows spill to TempDir and entity rows are kept on disk until output. Zero means
	// DefaultMemoryBudget(). The engine plans its live data at about half of it, leaving the rest
	// for the Go garbage collector's headroom.
	MemoryBudget int64
	// TempDir is where spill files go; empty means os.TempDir(). Files are removed when the
	// Result is released or the join fails.
	TempDir string
	// FullFeatureNames names output feature columns view__feature instead of feature.
	FullFeatureNames bool
	// CreatedCutoff additionally requires created_ts <= T (a null created_ts always passes), so
	// rows that arrived after the label time cannot leak into training data.
	CreatedCutoff bool
	// EventTimestampColumn is the entity rows' timestamp column; empty means "event_timestamp".
	EventTimestampColumn string
	// Parallelism is how many goroutines work at once; zero means GOMAXPROCS.
	Parallelism int
	// Allocator allocates the output and spill buffers; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
	// Fold joins a view whose features are all fixed-width, and whose keys have at most 32 entity
	// rows each, as its feature rows are read: each entity row keeps its best match so far and
	// its values (fold.go). No candidate is kept and nothing spills: the view's memory is 24
	// bytes an entity row on top of its output, whatever the number of feature rows. Other
	// views, and any view when that does not fit its share of the budget, take the candidate
	// path. The rows are the same either way.
	Fold bool
}

func (o Options) withDefaults() Options {
	if o.MemoryBudget <= 0 {
		o.MemoryBudget = DefaultMemoryBudget()
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.EventTimestampColumn == "" {
		o.EventTimestampColumn = DefaultEventTimestampColumn
	}
	if o.Parallelism <= 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	return o
}

// DefaultMemoryBudget is a quarter of the memory available to the process: the cgroup limit
// when one is set, else the machine's total RAM; 1 GiB when neither can be read.
func DefaultMemoryBudget() int64 {
	total := cgroupLimit()
	if m := memTotal(); m > 0 && (total <= 0 || m < total) {
		total = m
	}
	if total <= 0 {
		return 1 << 30
	}
	return total / 4
}

func cgroupLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err == nil && n > 0 && n < 1<<60 {
			return n
		}
	}
	return 0
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
