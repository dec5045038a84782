package definitions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Applied is an object as the registry holds it now: its latest live version.
type Applied struct {
	Kind    Kind
	Name    string
	Version int
	Hash    string
	Spec    []byte
}

// Op is what a plan does to one object.
type Op string

// Plan operations.
const (
	OpAdd    Op = "add"
	OpChange Op = "change"
	OpRemove Op = "remove"
)

// Change is one entry of a plan.
type Change struct {
	Op   Op
	Kind Kind
	Name string
	// Object is the new definition (nil for a removal).
	Object Object
	// Spec and Hash are the new definition's canonical spec and hash (empty for a removal).
	Spec []byte
	Hash string
	// FromVersion is the registry version being changed or removed (0 for an addition).
	FromVersion int
	// Fields lists what changed, field by field (changes only), each classified as
	// compatible or breaking (ClassifyChange).
	Fields []FieldDiff
	// Breaking is true when any field change is breaking: apply needs --allow-breaking.
	Breaking bool
	// Generations are the feature views whose data a breaking change invalidates: each
	// starts a new definition generation when the change is applied (the view itself, or the
	// views that use a changed entity or source), by name.
	Generations []string
}

// FieldDiff is one changed leaf of a spec. Path reads like `features[clicks_7d].type`; Old
// or New is empty when the field was added or removed. Breaking and Reason are set by
// ClassifyChange.
type FieldDiff struct {
	Path string
	Old  string
	New  string
	// Breaking is true when the change invalidates data written for the old definition.
	Breaking bool
	// Reason says in a few words why the change is compatible or breaking.
	Reason string
}

// Plan compares the repo with what is applied and returns the changes that apply would make,
// in dependency order (kind order, then name). Unchanged objects are left out.
func Plan(repo *Repo, applied []Applied) ([]Change, error) {
	type key struct {
		k Kind
		n string
	}
	current := map[key]Applied{}
	for _, a := range applied {
		current[key{a.Kind, a.Name}] = a
	}
	var changes []Change
	for _, o := range repo.Objects() {
		spec, err := Spec(o)
		if err != nil {
			return nil, err
		}
		c := Change{Kind: o.ObjectKind(), Name: o.ObjectName(), Object: o, Spec: spec, Hash: HashSpec(spec)}
		k := key{c.Kind, c.Name}
		cur, ok := current[k]
		delete(current, k)
		switch {
		case !ok:
			c.Op = OpAdd
		case cur.Hash == c.Hash:
			continue
		default:
			c.Op = OpChange
			c.FromVersion = cur.Version
			c.Fields, err = DiffSpecs(cur.Spec, spec)
			if err != nil {
				return nil, fmt.Errorf("diff %s %q: %w", c.Kind.Label(), c.Name, err)
			}
			if len(c.Fields) == 0 { // same fields, different order
				c.Fields = []FieldDiff{{Path: "(order of list items)", Old: "as before", New: "reordered"}}
			}
			ClassifyChange(repo, &c)
		}
		changes = append(changes, c)
	}
	for _, a := range current {
		changes = append(changes, Change{Op: OpRemove, Kind: a.Kind, Name: a.Name, FromVersion: a.Version})
	}
	order := map[Kind]int{}
	for i, k := range Kinds {
		order[k] = i
	}
	sort.SliceStable(changes, func(i, j int) bool {
		a, b := changes[i], changes[j]
		if order[a.Kind] != order[b.Kind] {
			return order[a.Kind] < order[b.Kind]
		}
		return a.Name < b.Name
	})
	return changes, nil
}

// DiffSpecs compares two canonical specs leaf by leaf. Lists of named items (features, join
// keys) are matched by name, so reordering or inserting one feature reads as exactly that.
func DiffSpecs(oldSpec, newSpec []byte) ([]FieldDiff, error) {
	var a, b any
	if err := decodeJSON(oldSpec, &a); err != nil {
		return nil, fmt.Errorf("old spec: %w", err)
	}
	if err := decodeJSON(newSpec, &b); err != nil {
		return nil, fmt.Errorf("new spec: %w", err)
	}
	fa, fb := map[string]string{}, map[string]string{}
	flatten("", a, fa)
	flatten("", b, fb)
	var out []FieldDiff
	for p, v := range fa {
		if w, ok := fb[p]; !ok {
			out = append(out, FieldDiff{Path: p, Old: v})
		} else if v != w {
			out = append(out, FieldDiff{Path: p, Old: v, New: w})
		}
	}
	for p, w := range fb {
		if _, ok := fa[p]; !ok {
			out = append(out, FieldDiff{Path: p, New: w})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// flatten writes every leaf of v into out under a readable path.
func flatten(prefix string, v any, out map[string]string) {
	join := func(p, k string) string {
		if p == "" {
			return k
		}
		return p + "." + k
	}
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			out[prefix] = "{}"
		}
		for k, e := range t {
			flatten(join(prefix, k), e, out)
		}
	case []any:
		if len(t) == 0 {
			out[prefix] = "[]"
		}
		for i, e := range t {
			idx := strconv.Itoa(i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					idx = n
				}
			}
			flatten(prefix+"["+idx+"]", e, out)
		}
	case nil:
		out[prefix] = "null"
	case string:
		out[prefix] = strconv.Quote(t)
	default:
		out[prefix] = fmt.Sprint(t)
	}
}
