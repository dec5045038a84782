package definitions

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Why a field change is compatible or breaking, as plan prints it.
const (
	ReasonNewFeature     = "new feature"
	ReasonFeatureRemoved = "feature removed: its stored values no longer belong to the view"
	ReasonWidening       = "widening type promotion"
	ReasonTypeChange     = "incompatible type change: stored values cannot be read as the new type"
	ReasonJoinKey        = "join key change: stored rows are keyed differently"
	ReasonSource         = "source change: the view's history would come from different data"
	ReasonMetadata       = "metadata only"
	ReasonTTL            = "ttl only changes what is served as fresh"
	ReasonOnline         = "online flag"
	ReasonReorder        = "reordered features"
	ReasonNoData         = "does not change stored data"
	ReasonUnknown        = "unrecognized field change, treated as breaking"
	ReasonNoView         = "no feature view uses it"
)

// Widens reports whether a column of type from may be promoted to type to in place: the
// promotions Iceberg allows for the types Quiver has (int32 to int64, float32 to float64).
// Arrays are not promoted.
func Widens(from, to Type) bool {
	if from.Array || to.Array {
		return false
	}
	return (from.Elem == Int32 && to.Elem == Int64) || (from.Elem == Float32 && to.Elem == Float64)
}

// ClassifyChange marks every field of a change (OpChange) as compatible or breaking, sets
// c.Breaking, and lists in c.Generations the feature views of repo whose data the change
// invalidates.
//
// Compatible: a new feature, a new view, descriptions, tags, TTL, the online flag, reordered
// features, and the widening promotions Iceberg allows (Widens). Breaking: a narrowing or
// incompatible type change, a feature removed, a change of a view's entities or of an
// entity's join keys, and a change of a source that alters the view's history (its location,
// query, table or timestamp fields) that feature views of repo use. Feature services, models and training jobs hold no data:
// their changes are compatible.
func ClassifyChange(repo *Repo, c *Change) {
	if c.Op != OpChange {
		return
	}
	removed := map[string]bool{} // features whose name was removed
	for _, f := range c.Fields {
		if name, rest, ok := featurePath(f.Path); ok && rest == "name" && f.New == "" {
			removed[name] = true
		}
	}
	c.Breaking = false
	for i := range c.Fields {
		f := &c.Fields[i]
		f.Breaking, f.Reason = classifyField(c.Kind, f, removed)
		c.Breaking = c.Breaking || f.Breaking
	}
	c.Generations = nil
	if !c.Breaking {
		return
	}
	switch c.Kind {
	case KindFeatureView:
		c.Generations = []string{c.Name}
	case KindEntity, KindSource:
		if repo == nil {
			return
		}
		for _, o := range repo.Objects() {
			v, ok := o.(*FeatureView)
			if !ok {
				continue
			}
			if (c.Kind == KindEntity && slices.Contains(v.Entities, c.Name)) || (c.Kind == KindSource && v.Source == c.Name) {
				c.Generations = append(c.Generations, v.Name)
			}
		}
		sort.Strings(c.Generations)
		if len(c.Generations) == 0 {
			// No feature view holds data keyed or sourced by it: nothing to break.
			c.Breaking = false
			for i := range c.Fields {
				if c.Fields[i].Breaking {
					c.Fields[i].Breaking = false
					c.Fields[i].Reason = ReasonNoView
				}
			}
		}
	}
}

// featurePath splits "features[NAME].rest" into NAME and rest.
func featurePath(path string) (name, rest string, ok bool) {
	p, found := strings.CutPrefix(path, "features[")
	if !found {
		return "", "", false
	}
	i := strings.Index(p, "]")
	if i < 0 {
		return "", "", false
	}
	return p[:i], strings.TrimPrefix(p[i+1:], "."), true
}

func isMetadata(path string) bool {
	return path == "description" || path == "tags" || strings.HasPrefix(path, "tags.")
}

func classifyField(kind Kind, f *FieldDiff, removed map[string]bool) (bool, string) {
	if f.Path == "(order of list items)" {
		if kind == KindEntity {
			return true, ReasonJoinKey // join key order is part of every entity key
		}
		if kind == KindFeatureView {
			return false, ReasonReorder
		}
		return false, ReasonNoData
	}
	switch kind {
	case KindFeatureView:
		if isMetadata(f.Path) {
			return false, ReasonMetadata
		}
		switch {
		case f.Path == "ttl":
			return false, ReasonTTL
		case f.Path == "online":
			return false, ReasonOnline
		case f.Path == "source":
			return true, ReasonSource
		case f.Path == "entities" || strings.HasPrefix(f.Path, "entities["):
			return true, ReasonJoinKey
		}
		name, rest, ok := featurePath(f.Path)
		if !ok {
			return true, ReasonUnknown
		}
		switch {
		case removed[name]:
			return true, ReasonFeatureRemoved
		case f.Old == "":
			if rest == "description" {
				return false, ReasonMetadata
			}
			return false, ReasonNewFeature
		case rest == "description":
			return false, ReasonMetadata
		case rest == "type":
			from, err1 := ParseType(unquote(f.Old))
			to, err2 := ParseType(unquote(f.New))
			if err1 == nil && err2 == nil && Widens(from, to) {
				return false, ReasonWidening
			}
			return true, ReasonTypeChange
		}
		return true, ReasonUnknown
	case KindEntity:
		if isMetadata(f.Path) {
			return false, ReasonMetadata
		}
		if _, rest, ok := strings.Cut(f.Path, "]."); ok && strings.HasPrefix(f.Path, "join_keys[") && rest == "description" {
			return false, ReasonMetadata
		}
		return true, ReasonJoinKey
	case KindSource:
		if isMetadata(f.Path) {
			return false, ReasonMetadata
		}
		return true, ReasonSource
	}
	return false, ReasonNoData
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}

// BreakingFields lists "KIND NAME: PATH (REASON)" for every breaking field of the changes,
// for an error message.
func BreakingFields(changes []Change) []string {
	var out []string
	for _, c := range changes {
		for _, f := range c.Fields {
			if f.Breaking {
				what := f.Path
				switch {
				case f.Old != "" && f.New != "":
					what += " " + f.Old + " -> " + f.New
				case f.New == "":
					what += " removed"
				}
				out = append(out, string(c.Kind)+" "+c.Name+": "+what+" ("+f.Reason+")")
			}
		}
	}
	return out
}
