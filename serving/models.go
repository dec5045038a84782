package serving

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/serving/model"
	"github.com/quiverfs/quiver/serving/model/oip"
	"github.com/quiverfs/quiver/serving/model/onnx"
)

// ModelResolver turns a request's model reference into the version that answers and the
// feature service it was trained with. The default, DefinitionResolver, reads the `models:`
// definition; a resolver backed by registered model versions and aliases (from the training
// registry) plugs in here without touching the handlers.
type ModelResolver interface {
	// ResolveModel returns the version ref names in the definitions d. An unknown model,
	// version or alias gives an error matching model.ErrNotFound that names it.
	ResolveModel(ctx context.Context, d *Definitions, ref model.Ref) (model.Version, error)
}

// DefinitionResolver resolves models from their `models:` definition: the version is the
// definition's registry version ("1", "2", ...), the alias "latest" or "current" names it too.
type DefinitionResolver struct{}

// ResolveModel implements ModelResolver.
func (DefinitionResolver) ResolveModel(ctx context.Context, d *Definitions, ref model.Ref) (model.Version, error) {
	m := d.Repo.Model(ref.Name)
	if m == nil {
		return model.Version{}, tag(model.ErrNotFound, d.Repo.UnknownError(definitions.KindModel, ref.Name))
	}
	version := strconv.Itoa(max(d.Versions[definitions.KindModel][m.Name], 1))
	switch {
	case ref.Version != "" && ref.Version != version:
		return model.Version{}, tagf(model.ErrNotFound, "model %q has no version %q; its current version is %q (registered model versions are not served yet)", m.Name, ref.Version, version)
	case ref.Alias != "" && ref.Alias != "latest" && ref.Alias != "current":
		return model.Version{}, fmt.Errorf("model %q has no alias %q; valid aliases: \"latest\", \"current\": %w", m.Name, ref.Alias, model.ErrNotFound)
	}
	return model.Version{
		Model:          m.Name,
		Version:        version,
		FeatureService: m.FeatureService,
		Runtime:        m.Runtime,
		Path:           m.Path,
		Endpoint:       m.Endpoint,
	}, nil
}

// ModelOpener opens a model version's runtime. The server caches what it opens and closes it
// when the version is no longer served or the server stops.
type ModelOpener interface {
	OpenModel(ctx context.Context, v model.Version) (model.Model, error)
}

// ModelOpenerFunc adapts a function to ModelOpener.
type ModelOpenerFunc func(ctx context.Context, v model.Version) (model.Model, error)

// OpenModel implements ModelOpener.
func (f ModelOpenerFunc) OpenModel(ctx context.Context, v model.Version) (model.Model, error) {
	return f(ctx, v)
}

// RuntimeOpener is the one place that chooses a model runtime by name: onnx (in process) or
// oip (a remote Open Inference Protocol server).
type RuntimeOpener struct {
	// BaseDir is what relative ONNX paths are relative to (the feature repo). Default: the
	// working directory.
	BaseDir string
	ONNX    onnx.Options
	OIP     oip.Options
}

// OpenModel implements ModelOpener.
func (o RuntimeOpener) OpenModel(ctx context.Context, v model.Version) (model.Model, error) {
	switch v.Runtime {
	case definitions.RuntimeONNX:
		if v.Path == "" {
			return nil, tagf(ErrPrecondition, "model %q version %s has no ONNX file path", v.Model, v.Version)
		}
		p := v.Path
		if !filepath.IsAbs(p) && o.BaseDir != "" {
			p = filepath.Join(o.BaseDir, p)
		}
		return onnx.Open(p, o.ONNX)
	case definitions.RuntimeOIP:
		if v.Endpoint == "" {
			return nil, tagf(ErrPrecondition, "model %q version %s has no OIP endpoint", v.Model, v.Version)
		}
		name, version := v.RemoteName, v.RemoteVersion
		if name == "" {
			name = v.Model
		}
		return oip.Dial(ctx, v.Endpoint, name, version, o.OIP)
	}
	return nil, tagf(ErrPrecondition, "model %q: unknown runtime %q (valid: %s, %s)", v.Model, v.Runtime, definitions.RuntimeONNX, definitions.RuntimeOIP)
}

// modelCache holds opened models by model.Version.Key.
type modelCache struct {
	opener ModelOpener
	log    *slog.Logger

	mu     sync.Mutex
	loaded map[string]*loadedModel
}

type loadedModel struct {
	version model.Version
	ready   chan struct{} // closed once m or err is set
	m       model.Model
	err     error

	mu     sync.RWMutex // held for reading while predicting, for writing to close
	closed bool
}

func newModelCache(opener ModelOpener, log *slog.Logger) *modelCache {
	return &modelCache{opener: opener, log: log, loaded: map[string]*loadedModel{}}
}

// predict runs v on in, opening it first if needed.
func (c *modelCache) predict(ctx context.Context, v model.Version, in *model.Batch) ([]model.Tensor, error) {
	for range 3 { // a model closed by a concurrent refresh is reopened
		lm, err := c.get(ctx, v)
		if err != nil {
			return nil, err
		}
		lm.mu.RLock()
		if lm.closed {
			lm.mu.RUnlock()
			continue
		}
		out, err := lm.m.Predict(ctx, in)
		lm.mu.RUnlock()
		return out, err
	}
	return nil, fmt.Errorf("model %q version %s: closed while in use: %w", v.Model, v.Version, model.ErrUnavailable)
}

func (c *modelCache) get(ctx context.Context, v model.Version) (*loadedModel, error) {
	key := v.Key()
	c.mu.Lock()
	lm, ok := c.loaded[key]
	if !ok {
		lm = &loadedModel{version: v, ready: make(chan struct{})}
		c.loaded[key] = lm
		c.mu.Unlock()
		// Open without the request's deadline: the model outlives the request.
		lm.m, lm.err = c.opener.OpenModel(context.WithoutCancel(ctx), v)
		if lm.err != nil {
			lm.err = fmt.Errorf("open model %q version %s (%s): %w", v.Model, v.Version, v.Runtime, lm.err)
			c.mu.Lock()
			delete(c.loaded, key) // retried by the next request
			c.mu.Unlock()
		} else {
			c.log.Info("model opened", "model", v.Model, "version", v.Version, "runtime", v.Runtime)
		}
		close(lm.ready)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-lm.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("open model %q: %w", v.Model, ctx.Err())
	}
	if lm.err != nil {
		return nil, lm.err
	}
	return lm, nil
}

// onSwap returns the callback that closes models no longer current after a definitions swap.
func (c *modelCache) onSwap(ctx context.Context, r ModelResolver) func(old, cur *Definitions) {
	return func(_, cur *Definitions) {
		keep := map[string]bool{}
		for _, m := range cur.Repo.Models {
			if v, err := r.ResolveModel(ctx, cur, model.Ref{Name: m.Name}); err == nil {
				keep[v.Key()] = true
			}
		}
		c.mu.Lock()
		var stale []*loadedModel
		for k, lm := range c.loaded {
			if !keep[k] {
				stale = append(stale, lm)
				delete(c.loaded, k)
			}
		}
		c.mu.Unlock()
		for _, lm := range stale {
			c.close(lm)
		}
	}
}

func (c *modelCache) close(lm *loadedModel) {
	<-lm.ready
	if lm.err != nil {
		return
	}
	lm.mu.Lock()
	defer lm.mu.Unlock()
	if lm.closed {
		return
	}
	lm.closed = true
	if err := lm.m.Close(); err != nil {
		c.log.Warn("close model", "model", lm.version.Model, "version", lm.version.Version, "err", err)
	}
}

func (c *modelCache) closeAll() {
	c.mu.Lock()
	all := make([]*loadedModel, 0, len(c.loaded))
	for k, lm := range c.loaded {
		all = append(all, lm)
		delete(c.loaded, k)
	}
	c.mu.Unlock()
	for _, lm := range all {
		c.close(lm)
	}
}
