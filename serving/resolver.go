package serving

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving/model"
)

// RegistryResolver resolves models from the versions training registered in the registry:
// a version number, an alias (churn@production), or, with neither, the latest version. A model
// with no registered version falls back to its `models:` definition (DefinitionResolver). The
// version's feature service — the one its training dataset was built from — is what the model
// is fed. Resolutions are cached for TTL, so the registry is not queried on every request.
type RegistryResolver struct {
	Models  registry.ModelStore
	Project string
	// TTL is how long a resolution is reused; an alias moved in the registry is served after
	// at most TTL. Default 5s.
	TTL time.Duration
	// Now is the clock TTL is measured with. Default time.Now.
	Now func() time.Time

	mu    sync.Mutex
	cache map[model.Ref]resolved
}

type resolved struct {
	v       model.Version
	err     error
	expires time.Time
}

// ResolveModel implements ModelResolver.
func (r *RegistryResolver) ResolveModel(ctx context.Context, d *Definitions, ref model.Ref) (model.Version, error) {
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	now := time.Now()
	if r.Now != nil {
		now = r.Now()
	}
	r.mu.Lock()
	if c, ok := r.cache[ref]; ok && now.Before(c.expires) {
		r.mu.Unlock()
		return c.v, c.err
	}
	r.mu.Unlock()

	v, err := r.resolve(ctx, d, ref)
	if err != nil && !errors.Is(err, model.ErrNotFound) {
		return v, err // registry trouble: not cached
	}
	r.mu.Lock()
	if r.cache == nil || len(r.cache) > 10000 {
		r.cache = map[model.Ref]resolved{}
	}
	r.cache[ref] = resolved{v: v, err: err, expires: now.Add(ttl)}
	r.mu.Unlock()
	return v, err
}

func (r *RegistryResolver) resolve(ctx context.Context, d *Definitions, ref model.Ref) (model.Version, error) {
	def := d.Repo.Model(ref.Name)
	var (
		mv  registry.ModelVersion
		err error
	)
	switch {
	case ref.Alias != "":
		mv, err = r.Models.ResolveModelAlias(ctx, r.Project, ref.Name, ref.Alias)
		if errors.Is(err, registry.ErrNotFound) {
			return model.Version{}, tagf(model.ErrNotFound, "model %q has no alias %q%s", ref.Name, ref.Alias, r.aliases(ctx, ref.Name))
		}
	case ref.Version != "":
		n, perr := strconv.Atoi(ref.Version)
		if perr != nil || n <= 0 {
			return model.Version{}, tagf(model.ErrNotFound, "model %q has no version %q; versions are 1, 2, ...", ref.Name, ref.Version)
		}
		mv, err = r.Models.GetModelVersion(ctx, r.Project, ref.Name, n)
		if errors.Is(err, registry.ErrNotFound) {
			return model.Version{}, tagf(model.ErrNotFound, "model %q has no version %d", ref.Name, n)
		}
	default:
		mv, err = r.Models.GetModelVersion(ctx, r.Project, ref.Name, 0)
		if errors.Is(err, registry.ErrNotFound) {
			return DefinitionResolver{}.ResolveModel(ctx, d, ref)
		}
	}
	if err != nil {
		return model.Version{}, fmt.Errorf("resolve model %s: %w", ref, err)
	}
	v := model.Version{
		Model:          mv.Name,
		Version:        strconv.Itoa(mv.Version),
		FeatureService: mv.FeatureService,
		Runtime:        mv.Runtime,
		Path:           mv.ArtifactURI,
	}
	if def != nil {
		if v.FeatureService == "" {
			v.FeatureService = def.FeatureService
		}
		if v.Runtime == "" {
			v.Runtime = def.Runtime
		}
		v.Endpoint = def.Endpoint
	}
	if v.Runtime == "" {
		v.Runtime = definitions.RuntimeONNX
	}
	return v, nil
}

// aliases lists a model's aliases for a not-found message.
func (r *RegistryResolver) aliases(ctx context.Context, name string) string {
	as, err := r.Models.ListModelAliases(ctx, r.Project, name)
	if err != nil || len(as) == 0 {
		return " (it has no aliases)"
	}
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.Alias
	}
	return fmt.Sprintf(" (its aliases: %s)", strings.Join(names, ", "))
}
