package definitions

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/quiverfs/quiver/internal/errkind"
)

// Repo is a complete, validated set of definitions: every reference resolves, names are unique
// per kind, and services have no colliding feature names. Objects of each kind are sorted by
// name. A Repo is immutable once built; it is safe for concurrent readers.
type Repo struct {
	Entities        []*Entity
	Sources         []*Source
	FeatureViews    []*FeatureView
	FeatureServices []*FeatureService
	Models          []*Model
	TrainingJobs    []*TrainingJob
	RequestSources  []*RequestSource
	OnDemandViews   []*OnDemandFeatureView

	byName   map[Kind]map[string]Object
	compiled map[string]*CompiledView // on-demand views' checked expressions, by name
}

// ReservedColumns are the column names the offline store and datasets add; features and
// join keys may not use them.
var ReservedColumns = []string{"event_ts", "created_ts", "event_timestamp"}

// NewRepo checks a set of objects as a whole (duplicate names, references, collisions) and
// returns the Repo, or an ErrorList naming every problem.
func NewRepo(objects []Object) (*Repo, error) {
	r := &Repo{byName: map[Kind]map[string]Object{}, compiled: map[string]*CompiledView{}}
	var errs ErrorList
	for _, k := range Kinds {
		r.byName[k] = map[string]Object{}
	}
	for _, o := range objects {
		k, name := o.ObjectKind(), o.ObjectName()
		if prev, dup := r.byName[k][name]; dup {
			errs.add(o.Position(), "duplicate %s %q; first declared at %s (names are unique per kind)", k.Label(), name, prev.Position())
			continue
		}
		r.byName[k][name] = o
		switch o := o.(type) {
		case *Entity:
			r.Entities = append(r.Entities, o)
		case *Source:
			r.Sources = append(r.Sources, o)
		case *FeatureView:
			r.FeatureViews = append(r.FeatureViews, o)
		case *FeatureService:
			r.FeatureServices = append(r.FeatureServices, o)
		case *Model:
			r.Models = append(r.Models, o)
		case *TrainingJob:
			r.TrainingJobs = append(r.TrainingJobs, o)
		case *RequestSource:
			r.RequestSources = append(r.RequestSources, o)
		case *OnDemandFeatureView:
			r.OnDemandViews = append(r.OnDemandViews, o)
		}
	}
	sortByName(r.RequestSources)
	sortByName(r.OnDemandViews)
	sortByName(r.Entities)
	sortByName(r.Sources)
	sortByName(r.FeatureViews)
	sortByName(r.FeatureServices)
	sortByName(r.Models)
	sortByName(r.TrainingJobs)

	for _, e := range r.Entities {
		r.checkEntity(e, &errs)
	}
	for _, v := range r.FeatureViews {
		r.checkView(v, &errs)
	}
	for _, s := range r.RequestSources {
		r.checkRequestSource(s, &errs)
	}
	for _, v := range r.OnDemandViews {
		r.checkOnDemand(v, &errs)
	}
	for _, s := range r.FeatureServices {
		r.checkService(s, &errs)
	}
	for _, m := range r.Models {
		r.ref(m.Pos, "model "+strconvQuote(m.Name), KindFeatureService, m.FeatureService, &errs)
	}
	for _, j := range r.TrainingJobs {
		r.checkJob(j, &errs)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

func sortByName[T Object](s []T) {
	sort.Slice(s, func(i, j int) bool { return s[i].ObjectName() < s[j].ObjectName() })
}

// Names returns the sorted names of every object of a kind.
func (r *Repo) Names(k Kind) []string {
	out := make([]string, 0, len(r.byName[k]))
	for n := range r.byName[k] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns the object of kind k named name, or nil.
func (r *Repo) Get(k Kind, name string) Object { return r.byName[k][name] }

// Objects returns every object, kind by kind in dependency order, by name within a kind.
func (r *Repo) Objects() []Object {
	var out []Object
	for _, e := range r.Entities {
		out = append(out, e)
	}
	for _, s := range r.Sources {
		out = append(out, s)
	}
	for _, s := range r.RequestSources {
		out = append(out, s)
	}
	for _, v := range r.FeatureViews {
		out = append(out, v)
	}
	for _, v := range r.OnDemandViews {
		out = append(out, v)
	}
	for _, s := range r.FeatureServices {
		out = append(out, s)
	}
	for _, m := range r.Models {
		out = append(out, m)
	}
	for _, j := range r.TrainingJobs {
		out = append(out, j)
	}
	return out
}

// Entity returns the entity named name, or nil.
func (r *Repo) Entity(name string) *Entity { e, _ := r.byName[KindEntity][name].(*Entity); return e }

// Source returns the source named name, or nil.
func (r *Repo) Source(name string) *Source { s, _ := r.byName[KindSource][name].(*Source); return s }

// FeatureView returns the feature view named name, or nil.
func (r *Repo) FeatureView(name string) *FeatureView {
	v, _ := r.byName[KindFeatureView][name].(*FeatureView)
	return v
}

// FeatureService returns the feature service named name, or nil.
func (r *Repo) FeatureService(name string) *FeatureService {
	s, _ := r.byName[KindFeatureService][name].(*FeatureService)
	return s
}

// Model returns the model named name, or nil.
func (r *Repo) Model(name string) *Model { m, _ := r.byName[KindModel][name].(*Model); return m }

// TrainingJob returns the training job named name, or nil.
func (r *Repo) TrainingJob(name string) *TrainingJob {
	j, _ := r.byName[KindTrainingJob][name].(*TrainingJob)
	return j
}

// JoinKeys returns the join keys of a view: its entities' keys, in the order the entities are
// listed.
func (r *Repo) JoinKeys(v *FeatureView) []Field {
	var out []Field
	for _, en := range v.Entities {
		if e := r.Entity(en); e != nil {
			out = append(out, e.JoinKeys...)
		}
	}
	return out
}

// UnknownError says that a name of some kind does not exist, listing close valid names.
func (r *Repo) UnknownError(k Kind, name string) error {
	names := r.Names(k)
	return errkind.Errorf(errkind.Invalid, "unknown %s %q (valid %ss: %s)%s", k.Label(), name, k.Label(), quoteList(names), Suggest(name, names))
}

// ref checks that name refers to an existing object of kind k, reporting at pos.
func (r *Repo) ref(pos Pos, from string, k Kind, name string, errs *ErrorList) bool {
	if name == "" {
		return false
	}
	if _, ok := r.byName[k][name]; ok {
		return true
	}
	names := r.Names(k)
	errs.add(pos, "%s refers to unknown %s %q (declared %ss: %s)%s", from, k.Label(), name, k.Label(), quoteList(names), Suggest(name, names))
	return false
}

func (r *Repo) checkEntity(e *Entity, errs *ErrorList) {
	seen := map[string]bool{}
	for _, k := range e.JoinKeys {
		if seen[k.Name] {
			errs.add(k.Pos, "entity %q has join key %q twice", e.Name, k.Name)
		}
		seen[k.Name] = true
		if k.Type.Array || k.Type.Elem == Float32 || k.Type.Elem == Float64 {
			errs.add(k.Pos, "join key %q of entity %q has type %s; join keys must be int32, int64, string, bytes, bool or timestamp", k.Name, e.Name, k.Type)
		}
		if slices.Contains(ReservedColumns, k.Name) {
			errs.add(k.Pos, "join key %q of entity %q uses a reserved column name (%s)", k.Name, e.Name, strings.Join(ReservedColumns, ", "))
		}
	}
}

func (r *Repo) checkView(v *FeatureView, errs *ErrorList) {
	from := "feature view " + strconvQuote(v.Name)
	// An aggregation view may read any source: push and stream ingestion fold its events
	// into the online tiles (docs/aggregations.md).
	r.ref(v.Pos, from, KindSource, v.Source, errs)
	keys := map[string]string{} // join key -> entity
	for _, en := range v.Entities {
		if !r.ref(v.Pos, from, KindEntity, en, errs) {
			continue
		}
		for _, k := range r.Entity(en).JoinKeys {
			if other, dup := keys[k.Name]; dup {
				errs.add(v.Pos, "%s: entities %q and %q both have join key %q", from, other, en, k.Name)
			}
			keys[k.Name] = en
		}
	}
	seen := map[string]bool{}
	for _, f := range v.Features {
		switch {
		case seen[f.Name]:
			errs.add(f.Pos, "%s has feature %q twice", from, f.Name)
		case keys[f.Name] != "":
			errs.add(f.Pos, "%s: feature %q has the name of a join key of entity %q", from, f.Name, keys[f.Name])
		case slices.Contains(ReservedColumns, f.Name):
			errs.add(f.Pos, "%s: feature %q uses a reserved column name (%s)", from, f.Name, strings.Join(ReservedColumns, ", "))
		}
		seen[f.Name] = true
	}
}

func (r *Repo) checkService(s *FeatureService, errs *ErrorList) {
	from := "feature service " + strconvQuote(s.Name)
	if len(s.Features) == 0 {
		errs.add(s.Pos, "%s selects no features", from)
	}
	owner := map[string]FeatureRef{} // output feature name -> ref that produced it
	for _, ref := range s.Features {
		if r.OnDemandView(ref.View) != nil {
			fs, err := r.onDemandRef(ref)
			if err != nil {
				errs.add(s.Pos, "%s refers to %v", from, err)
				continue
			}
			for _, f := range fs {
				if prev, dup := owner[f.Feature.Name]; dup {
					errs.add(s.Pos, "%s: feature name %q comes from both %q and %q; select only one of them (feature names in a service must be unique)", from, f.Feature.Name, prev.View, ref.View)
					continue
				}
				owner[f.Feature.Name] = FeatureRef{View: ref.View, Feature: f.Feature.Name}
			}
			continue
		}
		if !r.ref(s.Pos, from, KindFeatureView, ref.View, errs) {
			continue
		}
		v := r.FeatureView(ref.View)
		var names []string
		if ref.Feature == "*" {
			for _, f := range v.Features {
				names = append(names, f.Name)
			}
		} else if _, ok := v.Feature(ref.Feature); ok {
			names = []string{ref.Feature}
		} else {
			valid := make([]string, len(v.Features))
			for i, f := range v.Features {
				valid[i] = f.Name
			}
			errs.add(s.Pos, "%s refers to unknown feature %q of view %q (its features: %s)%s", from, ref.Feature, v.Name, quoteList(valid), Suggest(ref.Feature, valid))
			continue
		}
		for _, n := range names {
			if prev, dup := owner[n]; dup {
				if prev.View == ref.View {
					errs.add(s.Pos, "%s selects %s:%s more than once", from, ref.View, n)
				} else {
					errs.add(s.Pos, "%s: feature name %q comes from both %q and %q; select only one of them (feature names in a service must be unique)", from, n, prev.View, ref.View)
				}
				continue
			}
			owner[n] = FeatureRef{View: ref.View, Feature: n}
		}
	}
}

func (r *Repo) checkJob(j *TrainingJob, errs *ErrorList) {
	from := "training job " + strconvQuote(j.Name)
	r.ref(j.Pos, from, KindFeatureService, j.FeatureService, errs)
	if j.RegisterModel == "" {
		return
	}
	if !r.ref(j.Pos, from+" register_model", KindModel, j.RegisterModel, errs) {
		return
	}
	if m := r.Model(j.RegisterModel); j.FeatureService != "" && m.FeatureService != j.FeatureService {
		errs.add(j.Pos, "%s trains on feature service %q but registers model %q, which is served with feature service %q; a model must be served with the features it was trained on", from, j.FeatureService, m.Name, m.FeatureService)
	}
}

// ResolvedFeature is one feature of a service, with the view it comes from: a stored feature
// view (View), or an on-demand feature view (OnDemand; View is nil then).
type ResolvedFeature struct {
	View     *FeatureView
	Feature  Field
	OnDemand *OnDemandFeatureView
}

// Ref returns the "view:feature" name of the feature.
func (f ResolvedFeature) Ref() string { return f.ViewName() + ":" + f.Feature.Name }

// ResolveService expands a service's references ("view:*" included) into its features, in
// declaration order.
func (r *Repo) ResolveService(name string) ([]ResolvedFeature, error) {
	s := r.FeatureService(name)
	if s == nil {
		return nil, r.UnknownError(KindFeatureService, name)
	}
	return r.ResolveRefs(s.Features)
}

// ResolveRefs expands feature references into features, reporting the first unknown view or
// feature with the close valid names.
func (r *Repo) ResolveRefs(refs []FeatureRef) ([]ResolvedFeature, error) {
	var out []ResolvedFeature
	for _, ref := range refs {
		if r.OnDemandView(ref.View) != nil {
			fs, err := r.onDemandRef(ref)
			if err != nil {
				return nil, err
			}
			out = append(out, fs...)
			continue
		}
		v := r.FeatureView(ref.View)
		if v == nil {
			return nil, r.UnknownError(KindFeatureView, ref.View)
		}
		if ref.Feature == "*" {
			for _, f := range v.Features {
				out = append(out, ResolvedFeature{View: v, Feature: f})
			}
			continue
		}
		f, ok := v.Feature(ref.Feature)
		if !ok {
			valid := make([]string, len(v.Features))
			for i, f := range v.Features {
				valid[i] = f.Name
			}
			return nil, fmt.Errorf("unknown feature %q of view %q (its features: %s)%s", ref.Feature, v.Name, quoteList(valid), Suggest(ref.Feature, valid))
		}
		out = append(out, ResolvedFeature{View: v, Feature: f})
	}
	return out, nil
}

// Load reads every definitions file (*.yaml, *.yml) under the given paths of a feature repo,
// skipping hidden directories and the repo's quiver.yaml, and builds the Repo. paths are
// files or directories relative to root; none means the whole repo. Positions in errors are
// relative to root. All problems in all files are reported together. File paths inside the
// definitions must stay inside root (see LoadAllowing).
func Load(root string, paths ...string) (*Repo, error) {
	return LoadAllowing(root, nil, paths...)
}

// LoadAllowing is Load with more roots that file paths in the definitions may point into
// (quiver.yaml's allowed_paths), absolute or relative to root.
func LoadAllowing(root string, allowed []string, paths ...string) (*Repo, error) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var files []string
	for _, p := range paths {
		full := filepath.Join(root, p)
		err := filepath.WalkDir(full, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if path != full && (strings.HasPrefix(name, ".") || name == "node_modules") {
					return filepath.SkipDir
				}
				return nil
			}
			ext := filepath.Ext(name)
			if ext != ".yaml" && ext != ".yml" {
				return nil
			}
			if filepath.Dir(path) == filepath.Clean(root) && (name == "quiver.yaml" || name == "quiver.yml") {
				return nil
			}
			files = append(files, path)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read definitions under %s: %w", full, err)
		}
	}
	sort.Strings(files)
	files = slices.Compact(files)
	var objects []Object
	var errs ErrorList
	for _, path := range files {
		rel, err := filepath.Rel(root, path)
		if err != nil {
			rel = path
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("read definitions: %w", err)
		}
		if fi.Size() > MaxFileSize {
			errs = append(errs, fileTooLarge(filepath.ToSlash(rel), fi.Size()))
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read definitions: %w", err)
		}
		f, err := Parse(filepath.ToSlash(rel), data)
		var list ErrorList
		if errors.As(err, &list) {
			errs = append(errs, list...)
		} else if err != nil {
			return nil, err
		}
		objects = append(objects, f.Objects...)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve repo dir %s: %w", root, err)
	}
	errs = append(errs, CheckPaths(objects, PathPolicy{Root: abs, Allowed: allowed})...)
	repo, err := NewRepo(objects)
	if list := ErrorList(nil); errors.As(err, &list) {
		errs = append(errs, list...)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return repo, nil
}
