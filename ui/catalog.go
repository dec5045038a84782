package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// item is one catalog row: a definition object with what search and filters read.
type item struct {
	Kind        definitions.Kind
	Name        string
	Description string
	Tags        map[string]string
	Owner       string
	Version     int
	UpdatedAt   time.Time
	UpdatedBy   string
	// Features are a view's features; Matched those the search matched by name or description.
	Features []definitions.Field
	Matched  []string
	URL      string

	text         string   // name, description, tags and owner, lower-cased, for search
	featureTexts []string // each feature's name and description, lower-cased
}

func (it *item) tagList() []string {
	out := make([]string, 0, len(it.Tags))
	for k, v := range it.Tags {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// TagList is the item's tags as key=value, sorted.
func (it *item) TagList() []string { return it.tagList() }

// decodeItem reads the searchable parts of an object's spec.
func decodeItem(o registry.ObjectVersion) *item {
	it := &item{Kind: o.Kind, Name: o.Name, Version: o.Version, UpdatedAt: o.CreatedAt, UpdatedBy: o.CreatedBy, URL: kindPath(o.Kind, o.Name)}
	var common struct {
		Description string              `json:"description"`
		Tags        map[string]string   `json:"tags"`
		Features    []definitions.Field `json:"features"`
		Owner       string              `json:"owner"`
	}
	if json.Unmarshal(o.Spec, &common) == nil {
		it.Description, it.Tags, it.Owner = common.Description, common.Tags, common.Owner
		if o.Kind == definitions.KindFeatureView {
			it.Features = common.Features
		}
	}
	if it.Owner == "" {
		it.Owner = it.Tags["owner"]
	}
	it.text = strings.ToLower(it.Name + " " + it.Description + " " + strings.Join(it.tagList(), " ") + " " + it.Owner)
	for _, f := range it.Features {
		it.featureTexts = append(it.featureTexts, strings.ToLower(f.Name+" "+f.Description))
	}
	return it
}

// match reports whether every word is in the item's name, description, tags, owner or
// features, and which features matched. Items are shared between requests: it changes nothing.
func (it *item) match(words []string) (bool, []string) {
	var matched []string
	for _, w := range words {
		found := strings.Contains(it.text, w)
		for i, ft := range it.featureTexts {
			if strings.Contains(ft, w) {
				found = true
				if name := it.Features[i].Name; !slices.Contains(matched, name) {
					matched = append(matched, name)
				}
			}
		}
		if !found {
			return false, nil
		}
	}
	return true, matched
}

// catalogCache holds the catalog's items for one registry revision: an apply changes the
// revision, so a cached list is never stale.
type catalogCache struct {
	mu       sync.Mutex
	revision int64
	loaded   bool
	items    []*item
	owners   []string
}

// catalogItems returns every live definition of the project as a catalog item, and the
// owners they name.
func (s *Server) catalogItems(ctx context.Context) ([]*item, []string, error) {
	rev, err := s.opts.Registry.CurrentRevision(ctx, s.opts.Project)
	if err != nil {
		return nil, nil, err
	}
	c := &s.catalogC
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded && c.revision == rev {
		return c.items, c.owners, nil
	}
	objs, err := s.opts.Registry.ListObjects(ctx, s.opts.Project, "")
	if err != nil {
		return nil, nil, err
	}
	owners := map[string]bool{}
	items := make([]*item, 0, len(objs))
	for _, o := range objs {
		it := decodeItem(o)
		if it.Owner != "" {
			owners[it.Owner] = true
		}
		items = append(items, it)
	}
	c.items, c.owners, c.revision, c.loaded = items, sortedKeys(owners), rev, true
	return c.items, c.owners, nil
}

type catalogData struct {
	Q, Kind, Tag, Owner, Sort string
	Kinds                     []definitions.Kind
	Owners                    []string
	Counts                    map[definitions.Kind]int
	Items                     []*item
	Pager                     pager
	Sorts                     []sortLink
}

var catalogSorts = map[string]func(a, b *item) int{
	"name": func(a, b *item) int { return strings.Compare(a.Name, b.Name) },
	"kind": func(a, b *item) int {
		return cmpOr(strings.Compare(string(a.Kind), string(b.Kind)), strings.Compare(a.Name, b.Name))
	},
	"-updated": func(a, b *item) int { return cmpOr(b.UpdatedAt.Compare(a.UpdatedAt), strings.Compare(a.Name, b.Name)) },
}

func cmpOr(c ...int) int {
	for _, x := range c {
		if x != 0 {
			return x
		}
	}
	return 0
}

// catalog is GET /?q=&kind=&tag=&owner=&sort=&page=: every live definition, searched and
// filtered.
func (s *Server) catalog(r *http.Request) (*page, error) {
	q := r.URL.Query()
	d := &catalogData{Q: q.Get("q"), Kind: q.Get("kind"), Tag: q.Get("tag"), Owner: q.Get("owner"), Sort: q.Get("sort"),
		Kinds: definitions.Kinds, Counts: map[definitions.Kind]int{}}
	if d.Sort == "" {
		d.Sort = "kind"
	}
	cmp, ok := catalogSorts[d.Sort]
	if !ok {
		return nil, badRequestf("sort %q: valid sorts are name, kind, -updated", d.Sort)
	}
	var kind definitions.Kind
	if d.Kind != "" {
		var err error
		if kind, err = definitions.ParseKind(d.Kind); err != nil {
			return nil, badRequestf("kind %q: %v", d.Kind, err)
		}
		d.Kind = string(kind)
	}
	all, owners, err := s.catalogItems(r.Context())
	if err != nil {
		return nil, err
	}
	d.Owners = owners
	words := strings.Fields(strings.ToLower(d.Q))
	tagKey, tagValue, hasValue := strings.Cut(d.Tag, "=")
	var items []*item
	for _, it := range all {
		ok, matched := it.match(words)
		if !ok {
			continue
		}
		if d.Tag != "" {
			v, ok := it.Tags[tagKey]
			if !ok || (hasValue && v != tagValue) {
				continue
			}
		}
		if d.Owner != "" && it.Owner != d.Owner {
			continue
		}
		d.Counts[it.Kind]++ // counts over the search, before the kind filter
		if kind != "" && it.Kind != kind {
			continue
		}
		if matched != nil {
			cp := *it
			cp.Matched = matched
			it = &cp
		}
		items = append(items, it)
	}
	slices.SortFunc(items, cmp)
	off, pg, err := paginate(r, int64(len(items)), PageSize)
	if err != nil {
		return nil, err
	}
	d.Pager = pg
	d.Items = items[min(off, len(items)):min(off+PageSize, len(items))]
	d.Sorts = sortLinks(r.URL, d.Sort, [2]string{"Kind", "kind"}, [2]string{"Name", "name"}, [2]string{"Recently applied", "-updated"})
	title := "Catalog"
	if d.Q != "" {
		title = "Search: " + d.Q
	}
	return &page{Template: "catalog", Title: title, Nav: "catalog", Data: d}, nil
}

type objectData struct {
	Kind    definitions.Kind
	Item    *item
	Spec    string
	History []historyEntry
	// Related are links to objects this one names or that name it.
	Related []relation
}

type relation struct {
	Label, Name, URL string
}

type historyEntry struct {
	registry.ObjectVersion
	Changes []string
}

// object is GET /objects/{kind}/{name}: any definition other than a feature view.
func (s *Server) object(r *http.Request) (*page, error) {
	kind, err := definitions.ParseKind(r.PathValue("kind"))
	if err != nil {
		return nil, notFoundf("kind %q: %v", r.PathValue("kind"), err)
	}
	name := r.PathValue("name")
	ctx := r.Context()
	hist, err := s.opts.Registry.ObjectHistory(ctx, s.opts.Project, kind, name)
	if err != nil {
		return nil, err
	}
	latest := hist[len(hist)-1]
	d := &objectData{Kind: kind, Item: decodeItem(latest)}
	if !latest.Deleted {
		var buf strings.Builder
		var v any
		if json.Unmarshal(latest.Spec, &v) == nil {
			b, _ := json.MarshalIndent(v, "", "  ")
			buf.Write(b)
		}
		d.Spec = buf.String()
	}
	for i := len(hist) - 1; i >= 0; i-- {
		d.History = append(d.History, historyEntry{ObjectVersion: hist[i]})
	}
	obj, _ := definitions.DecodeSpec(kind, latest.Spec)
	switch o := obj.(type) {
	case *definitions.FeatureService:
		seen := map[string]bool{}
		for _, f := range o.Features {
			if !seen[f.View] {
				seen[f.View] = true
				d.Related = append(d.Related, relation{"feature view", f.View, kindPath(definitions.KindFeatureView, f.View)})
			}
		}
		users, err := s.modelsUsing(r, map[string]bool{name: true})
		if err != nil {
			return nil, err
		}
		d.Related = append(d.Related, users...)
	case *definitions.Model:
		d.Related = append(d.Related, relation{"feature service", o.FeatureService, kindPath(definitions.KindFeatureService, o.FeatureService)},
			relation{"registered versions", o.Name, "/models/" + pathEscape(o.Name)})
	case *definitions.TrainingJob:
		d.Related = append(d.Related, relation{"feature service", o.FeatureService, kindPath(definitions.KindFeatureService, o.FeatureService)},
			relation{"runs", o.Name, "/runs?job=" + queryEscape(o.Name)})
		if o.RegisterModel != "" {
			d.Related = append(d.Related, relation{"registers model", o.RegisterModel, "/models/" + pathEscape(o.RegisterModel)})
		}
	case *definitions.Source:
		views, err := s.opts.Registry.ListObjects(ctx, s.opts.Project, definitions.KindFeatureView)
		if err != nil {
			return nil, err
		}
		for _, v := range views {
			var fv struct{ Source string }
			if json.Unmarshal(v.Spec, &fv) == nil && fv.Source == name {
				d.Related = append(d.Related, relation{"feature view", v.Name, kindPath(definitions.KindFeatureView, v.Name)})
			}
		}
	case *definitions.Entity:
		views, err := s.opts.Registry.ListObjects(ctx, s.opts.Project, definitions.KindFeatureView)
		if err != nil {
			return nil, err
		}
		for _, v := range views {
			var fv struct{ Entities []string }
			if json.Unmarshal(v.Spec, &fv) == nil && slices.Contains(fv.Entities, name) {
				d.Related = append(d.Related, relation{"feature view", v.Name, kindPath(definitions.KindFeatureView, v.Name)})
			}
		}
	}
	return &page{Template: "object", Title: kind.Label() + " " + name, Nav: "catalog",
		Crumbs: []crumb{{"Catalog", "/?kind=" + string(kind)}}, Data: d}, nil
}

// modelsUsing lists the declared models and registered model versions served from any of
// services, one relation per model.
func (s *Server) modelsUsing(r *http.Request, services map[string]bool) ([]relation, error) {
	ctx := r.Context()
	seen := map[string]bool{}
	var out []relation
	models, err := s.opts.Registry.ListObjects(ctx, s.opts.Project, definitions.KindModel)
	if err != nil {
		return nil, err
	}
	for _, m := range models {
		var spec struct {
			FeatureService string `json:"feature_service"`
		}
		if json.Unmarshal(m.Spec, &spec) == nil && services[spec.FeatureService] && !seen[m.Name] {
			seen[m.Name] = true
			out = append(out, relation{"model", m.Name, "/models/" + pathEscape(m.Name)})
		}
	}
	versions, err := s.opts.Registry.ListModelVersions(ctx, s.opts.Project, "")
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		if services[v.FeatureService] && !seen[v.Name] {
			seen[v.Name] = true
			out = append(out, relation{"model", v.Name, "/models/" + pathEscape(v.Name)})
		}
	}
	return out, nil
}
