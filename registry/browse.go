package registry

import "context"

// BrowseStore answers the paged, sorted queries of the web UI (quiver ui): lists too long to
// read whole (a project's training runs) and metric series too long to draw point by point.
type BrowseStore interface {
	// PageTrainingRuns returns one page of the runs matching q, sorted as q.Sort says, and how
	// many runs match in all. An unknown sort is ErrInvalid.
	PageTrainingRuns(ctx context.Context, q TrainingRunPage) ([]TrainingRun, int64, error)
	// MetricSeries returns metric name of run id over its steps, at most maxPoints points in
	// step order (maxPoints <= 0 means 500). A metric with more points than that is sampled:
	// its step range is cut into maxPoints-1 equal strides and each stride's first point is
	// kept, then the last point. Its cost does not grow with the number of points. An unknown
	// run is ErrTrainingRunNotFound; an unknown metric gives no points.
	MetricSeries(ctx context.Context, id TrainingRunID, name string, maxPoints int) ([]Metric, error)
	// LatestMetrics returns the last point (greatest step, latest logged among equal steps) of
	// each metric of run id, by name; unlike MetricSummaries its cost does not grow with the
	// number of points. An unknown run is ErrTrainingRunNotFound.
	LatestMetrics(ctx context.Context, id TrainingRunID) ([]Metric, error)
	// ModelAliasEvents returns the audit trail of every alias of model name, removed aliases
	// included, newest first, at most limit events (<= 0: 100). An unknown model gives none.
	ModelAliasEvents(ctx context.Context, project, name string, limit int) ([]AliasEvent, error)
}

// Training run sorts for TrainingRunPage.Sort.
const (
	SortStartedDesc = "-started" // newest first (the default)
	SortStartedAsc  = "started"
	SortJob         = "job" // by job, newest first within a job
	SortStatus      = "status"
)

// TrainingRunSorts are the valid TrainingRunPage.Sort values.
var TrainingRunSorts = []string{SortStartedDesc, SortStartedAsc, SortJob, SortStatus}

// TrainingRunPage selects a page of a project's training runs. Empty fields match everything.
type TrainingRunPage struct {
	Project string
	Job     string
	Status  TrainingStatus
	// Tag, when its Key is set, keeps the runs with that tag (of that value, when Value is set).
	Tag    struct{ Key, Value string }
	Sort   string // one of TrainingRunSorts; empty is SortStartedDesc
	Limit  int    // <= 0: 50; never more than 1000
	Offset int
}
