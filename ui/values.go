package ui

import (
	"net/http"
	"strings"

	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/training"
)

// Feature values are data, not metadata: a ui grant lets a viewer browse definitions,
// datasets, runs and models, but the pages that show values computed from rows — a dataset's
// column statistics and distributions, and their diff — show a column's only to a principal
// granted what serving that column would need: a feature column's feature view (or a feature
// service or project grant covering it is not enough unless it names the view or the whole
// project), and any other column (join keys, timestamps, labels) the whole project.

// hiddenBecause is "" when the request's principal may see the values of column c, else what
// it would need to be granted.
func (s *Server) hiddenBecause(r *http.Request, c training.ColumnInfo) string {
	g := s.opts.Guard
	if g == nil {
		return ""
	}
	p := auth.FromContext(r.Context())
	res := auth.Resource{Kind: auth.KindProject, Project: s.opts.Project}
	if view, _, ok := strings.Cut(c.Feature, ":"); ok && view != "" {
		res = auth.Resource{Kind: auth.KindFeatureView, Project: s.opts.Project, Name: view}
	}
	if g.Allows(p, res) {
		return ""
	}
	return "hidden: values need a grant of " + res.String()
}
