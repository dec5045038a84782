package serving

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/serving/auth"
)

// Feature retrieval in domain types: the one function every transport calls. The server's
// GetFeatures, its gRPC handler (grpc.go; the HTTP/JSON gateway calls it in process) and the
// package's GetFeatures (`quiver get-online` in process, no server) all run retriever.retrieve;
// wire types stop at the adapters.

// FeatureRequest asks for features of a batch of entity rows.
type FeatureRequest struct {
	// FeatureService names the feature service whose features to read; or
	FeatureService string
	// Features lists "view:feature" (or "view:*") references, when FeatureService is empty.
	Features []string
	// Entities holds one column per join key, every column one value per entity row. Values
	// of the join key's declared type, or one that widens to it (int32 for int64, ...).
	Entities map[string][]online.Value
	// FullFeatureNames names columns "view__feature" instead of "feature".
	FullFeatureNames bool
	// RequestContext holds the request fields on-demand features read, one column per field
	// name, one value per entity row.
	RequestContext map[string][]online.Value
}

// Features is the answer to a FeatureRequest: one column per requested feature, in the
// service's (or the request's) order.
type Features struct {
	Rows    int
	Columns []FeatureColumn
}

// FeatureColumn is one feature over every entity row. Values, Statuses and EventTS have one
// entry per row. A row without a value holds online.Null() in Values whatever its status:
// NULL_VALUE, NOT_FOUND, and a stored null read past the TTL (OUTSIDE_MAX_AGE) alike. EventTS
// is zero when NOT_FOUND and is shared by the columns of one view: treat it as read-only.
type FeatureColumn struct {
	Name     string // "feature", or "view__feature" with FullFeatureNames
	View     string
	Type     definitions.Type
	Values   []online.Value
	Statuses []online.Status
	EventTS  []time.Time
}

// retriever is feature retrieval over one online store, as the server and GetFeatures (in
// process, without a server) run it.
type retriever struct {
	store   online.Reader
	maxRows int
	metrics *metrics    // nil: none recorded
	auth    *auth.Guard // nil: no authorization of on-demand inputs
	project string
	// beforeEval is a test hook: the request's on-demand features are about to be evaluated.
	beforeEval func(ctx context.Context)
}

func (s *Server) retriever() retriever {
	return retriever{store: s.opts.Store, maxRows: s.opts.MaxEntityRows, metrics: s.metrics, auth: s.opts.Auth,
		project: s.opts.Project, beforeEval: s.hooks.beforeEval}
}

// GetFeatures reads the requested features of the entity rows from store with the
// definitions d, in one store round trip, in process: the retrieval the server serves,
// without a server (quiver get-online). At most DefaultMaxEntityRows rows.
func GetFeatures(ctx context.Context, d *Definitions, store online.Reader, req FeatureRequest) (*Features, error) {
	p, res, _, err := retriever{store: store, maxRows: DefaultMaxEntityRows, project: d.Project}.retrieve(ctx, d, req)
	if err != nil {
		return nil, err
	}
	return planColumns(p, res), nil
}

// GetFeatures reads the requested features of the entity rows from the online store, in one
// store round trip. Errors match the package's sentinel errors (ErrInvalidRequest,
// ErrUnknown, ErrTooLarge, ErrPrecondition, ErrNotReady) or the store's (online.ErrUnavailable,
// ...); statusOf maps them to gRPC codes.
func (s *Server) GetFeatures(ctx context.Context, req FeatureRequest) (*Features, error) {
	f, _, err := s.getFeatures(ctx, req)
	return f, err
}

// getFeatures is GetFeatures that also returns the metrics label of the request.
func (s *Server) getFeatures(ctx context.Context, req FeatureRequest) (*Features, string, error) {
	p, res, label, err := s.retrieve(ctx, req)
	if err != nil {
		return nil, label, err
	}
	return planColumns(p, res), label, nil
}

// retrieve is feature retrieval: resolve, check, one store read. It returns the plan and the
// store's result rather than Features so that the gRPC adapter converts straight to the wire
// without building the domain columns first (planColumn gives them one at a time).
func (s *Server) retrieve(ctx context.Context, req FeatureRequest) (*readPlan, *online.ReadResult, string, error) {
	d, err := s.defs.get()
	if err != nil {
		return nil, nil, "unknown", err
	}
	return s.retriever().retrieve(ctx, d, req)
}

func (r retriever) retrieve(ctx context.Context, d *Definitions, req FeatureRequest) (*readPlan, *online.ReadResult, string, error) {
	label := "unknown"
	if err := ctx.Err(); err != nil { // its deadline may have passed while it was decoded
		return nil, nil, label, err
	}
	var p *readPlan
	var err error
	if req.FeatureService != "" {
		if p, err = servicePlan(d, req.FeatureService, req.FullFeatureNames); err != nil {
			return nil, nil, label, err
		}
		label = req.FeatureService
	} else {
		features, err := resolveFeatures(d, "", req.Features)
		if err != nil {
			return nil, nil, label, err
		}
		label = "_features"
		if p, err = planRead(d, features, req.FullFeatureNames); err != nil {
			return nil, nil, label, err
		}
		if err := r.authorizeOnDemandInputs(ctx, p.onDemand); err != nil {
			return nil, nil, label, err
		}
	}
	ents, err := checkEntities(d, req.Entities, r.maxRows)
	if err != nil {
		return nil, nil, label, err
	}
	if r.metrics != nil {
		r.metrics.entityRows.WithLabelValues("GetOnlineFeatures").Observe(float64(ents.rows))
	}
	reqCols, err := p.onDemand.requestColumns(req.RequestContext, ents.rows, true)
	if err != nil {
		return nil, nil, label, err
	}
	if err := fillKeys(p, ents); err != nil {
		return nil, nil, label, err
	}
	res, err := r.read(ctx, p)
	if err != nil {
		return nil, nil, label, err
	}
	if h := r.beforeEval; h != nil && p.onDemand != nil {
		h(ctx)
	}
	if err := p.onDemand.compute(ctx, p, res, reqCols); err != nil {
		res.Release()
		return nil, nil, label, err
	}
	return p, res, label, nil
}

// planColumns picks the plan's columns out of the store's result, in response order. The
// slices are the store's, not copies.
func planColumns(p *readPlan, res *online.ReadResult) *Features {
	out := &Features{Rows: res.Rows, Columns: make([]FeatureColumn, len(p.features))}
	for i := range p.features {
		out.Columns[i] = planColumn(p, res, i)
	}
	return out
}

// planColumn is response column i of the plan.
func planColumn(p *readPlan, res *online.ReadResult, i int) FeatureColumn {
	f, c := &p.features[i], p.resultColumn(res, i)
	return FeatureColumn{
		Name:     p.names[i],
		View:     f.ViewName(),
		Type:     f.Feature.Type,
		Values:   c.Values,
		Statuses: c.Statuses,
		EventTS:  c.EventTS,
	}
}

// authorizeOnDemandInputs checks, with authentication on, that the caller may read every
// stored feature view the plan's on-demand views read: a grant on an on-demand view does not
// cover them, or a caller sending amount=1 would read 1/spend_30d exactly. Requests by feature
// service do not come here: a grant on a service covers what the service declares, on-demand
// features and what they read included, as a model grant covers its service (docs/security.md).
func (r retriever) authorizeOnDemandInputs(ctx context.Context, od *onDemandPlan) error {
	if r.auth == nil || od == nil {
		return nil
	}
	for _, v := range od.views {
		var rs []auth.Resource
		for _, n := range v.view.Needs() {
			if n.Request || slices.ContainsFunc(rs, func(r auth.Resource) bool { return r.Name == n.Input }) {
				continue
			}
			rs = append(rs, auth.Resource{Kind: auth.KindFeatureView, Project: r.project, Name: n.Input})
		}
		if err := r.auth.AuthorizeReads(ctx, auth.MethodGetOnlineFeatures, "on-demand view "+strconv.Quote(v.view.Def.Name), rs...); err != nil {
			return err
		}
	}
	return nil
}
