package online

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/quiverfs/quiver/definitions"
)

// View is what the online store needs to know about one feature view of one project: its
// entities and their join keys (which make the entity key), its TTL and its features, in the
// declared order that Row.Values and feature indexes follow. Build it with NewView; it is
// immutable and safe to share between goroutines.
type View struct {
	Project  string
	Name     string
	Entities []string
	// JoinKeys are the join keys of Entities, entity by entity, each entity's in its declared
	// order: the values EntityKey is made of.
	JoinKeys []definitions.Field
	// TTL is how old a value may be and still be served as PRESENT; zero means no limit.
	TTL      time.Duration
	Features []definitions.Field

	// Generation is the view's definition generation (registry.GenerationStore); 0 or 1 is
	// the first. Rows are stored under the generation they were written for, so rows of
	// another generation are never read. Set it with WithGeneration.
	Generation int

	agg       *aggLayout     // set for an aggregation view (aggtiles.go)
	storage   string         // the view's name in the store: StorageName
	keyPrefix string         // encoded entity names, the head of every EntityKey
	tags      []uint32       // feature name hashes, by feature index
	index     map[string]int // feature name → index
}

// NewView describes feature view fv of project for the online store. entities must hold the
// definition of every entity fv names (in any order; others are ignored).
func NewView(project string, fv *definitions.FeatureView, entities []definitions.Entity) (*View, error) {
	if err := ValidateProject(project); err != nil {
		return nil, err
	}
	if fv == nil || fv.Name == "" {
		return nil, fmt.Errorf("online view: a feature view with a name is required: %w", ErrInvalidArgument)
	}
	if len(fv.Entities) == 0 {
		return nil, fmt.Errorf("online view %q: no entities: %w", fv.Name, ErrInvalidArgument)
	}
	if fv.TTL < 0 {
		return nil, fmt.Errorf("online view %q: negative ttl: %w", fv.Name, ErrInvalidArgument)
	}
	v := &View{
		Project:  project,
		Name:     fv.Name,
		Entities: append([]string(nil), fv.Entities...),
		TTL:      fv.TTL.Std(),
		Features: append([]definitions.Field(nil), fv.Features...),
		index:    make(map[string]int, len(fv.Features)),
		storage:  fv.Name,
	}
	prefix := []byte{keyVersion}
	prefix = binary.AppendUvarint(prefix, uint64(len(fv.Entities)))
	for _, name := range fv.Entities {
		var ent *definitions.Entity
		for i := range entities {
			if entities[i].Name == name {
				ent = &entities[i]
				break
			}
		}
		if ent == nil {
			return nil, fmt.Errorf("online view %q: entity %q not given: %w", fv.Name, name, ErrInvalidArgument)
		}
		if len(ent.JoinKeys) == 0 {
			return nil, fmt.Errorf("online view %q: entity %q has no join keys: %w", fv.Name, name, ErrInvalidArgument)
		}
		for _, jk := range ent.JoinKeys {
			if !jk.Type.Valid() || jk.Type.Array {
				return nil, fmt.Errorf("online view %q: join key %q of entity %q has type %s; join keys are scalars: %w",
					fv.Name, jk.Name, name, jk.Type, ErrInvalidArgument)
			}
		}
		v.JoinKeys = append(v.JoinKeys, ent.JoinKeys...)
		prefix = binary.AppendUvarint(prefix, uint64(len(name)))
		prefix = append(prefix, name...)
	}
	v.keyPrefix = string(prefix)
	v.tags = make([]uint32, len(v.Features))
	for i, f := range v.Features {
		if !f.Type.Valid() {
			return nil, fmt.Errorf("online view %q: feature %q has invalid type %s: %w", fv.Name, f.Name, f.Type, ErrInvalidArgument)
		}
		if _, dup := v.index[f.Name]; dup {
			return nil, fmt.Errorf("online view %q: feature %q declared twice: %w", fv.Name, f.Name, ErrInvalidArgument)
		}
		v.index[f.Name] = i
		v.tags[i] = FeatureTag(f.Name)
	}
	if fv.IsAggregation() {
		agg, err := newAggLayout(fv)
		if err != nil {
			return nil, err
		}
		v.agg = agg
	}
	return v, nil
}

// WithGeneration returns a copy of v for definition generation g (0 or 1: the first).
func (v *View) WithGeneration(g int) *View {
	c := *v
	c.Generation = max(g, 1)
	c.storage = StorageName(v.Name, g)
	return &c
}

// NewViewRef describes a view for DeleteView and CountView only, by project, name and
// generation, when its definition is gone (a removed view). It cannot be written or read.
func NewViewRef(project, name string, generation int) (*View, error) {
	if err := ValidateProject(project); err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("online view: a name is required: %w", ErrInvalidArgument)
	}
	return (&View{Project: project, Name: name, index: map[string]int{}}).WithGeneration(generation), nil
}

// StorageName is the name a view's rows of definition generation g are stored under (the
// Redis hash field, the embedded store's view column): the view's name for the first
// generation, NAME@g after. View names cannot contain '@', so generations never collide.
func StorageName(name string, g int) string {
	if g <= 1 {
		return name
	}
	return name + "@" + strconv.Itoa(g)
}

// StorageName is the name v's rows are stored under: StorageName(v.Name, v.Generation).
func (v *View) StorageName() string { return v.storage }

// StorageNamesThrough lists the storage names of v's generations 1 to v.Generation: every
// name its rows of this or an earlier generation can be stored under.
func (v *View) StorageNamesThrough() []string {
	out := make([]string, 0, max(v.Generation, 1))
	for g := 1; g <= max(v.Generation, 1); g++ {
		out = append(out, StorageName(v.Name, g))
	}
	return out
}

// ValidateProject checks that a project name can be part of a store key: not empty, and
// without ':', '{', '}' or control characters.
func ValidateProject(project string) error {
	if project == "" {
		return fmt.Errorf("online store: empty project name: %w", ErrInvalidArgument)
	}
	if strings.ContainsAny(project, ":{}") || strings.ContainsFunc(project, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("online store: project name %q may not contain ':', '{', '}' or control characters: %w", project, ErrInvalidArgument)
	}
	return nil
}

// FeatureTag is the 32-bit FNV-1a hash of a feature name that identifies the feature inside an
// encoded row (docs/online-format.md).
func FeatureTag(name string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return h.Sum32()
}

// FeatureIndexes returns the indexes of the named features, in the order given; no names
// means every feature.
func (v *View) FeatureIndexes(names ...string) ([]int, error) {
	if len(names) == 0 {
		all := make([]int, len(v.Features))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	out := make([]int, len(names))
	for i, n := range names {
		j, ok := v.index[n]
		if !ok {
			return nil, fmt.Errorf("view %q has no feature %q: %w", v.Name, n, ErrInvalidArgument)
		}
		out[i] = j
	}
	return out, nil
}

// EntityKey is the canonical binary form of one entity key of a view: its entities' names and
// the values of their join keys in order (docs/online-format.md). Views keyed by the same
// entities share entity keys, so a store can keep an entity's views together.
type EntityKey string

const keyVersion = 0x01

// KeyPrefix is the head every entity key of v starts with: the encoded names of its entities.
func (v *View) KeyPrefix() EntityKey { return EntityKey(v.keyPrefix) }

// Key makes the entity key from join-key values, one per JoinKeys entry, in that order.
func (v *View) Key(values ...Value) (EntityKey, error) {
	return v.AppendKey(nil, values...)
}

// AppendKey is Key reusing buf's storage for the encoding.
func (v *View) AppendKey(buf []byte, values ...Value) (EntityKey, error) {
	b, err := v.AppendKeyBytes(buf, values...)
	if err != nil {
		return "", err
	}
	return EntityKey(b), nil
}

// AppendKeyBytes is AppendKey returning the key's bytes, appended to buf[:0], so that a
// caller looking keys up in a map (m[EntityKey(b)]) allocates only for the keys it keeps.
func (v *View) AppendKeyBytes(buf []byte, values ...Value) ([]byte, error) {
	if len(values) != len(v.JoinKeys) {
		return nil, fmt.Errorf("view %q: entity key needs %d join-key values, got %d: %w", v.Name, len(v.JoinKeys), len(values), ErrInvalidArgument)
	}
	b := append(buf[:0], v.keyPrefix...)
	for i, val := range values {
		jk := v.JoinKeys[i]
		if val.IsNull() {
			return nil, fmt.Errorf("view %q: join key %q is null: %w", v.Name, jk.Name, ErrInvalidArgument)
		}
		if val.Type() != jk.Type {
			return nil, fmt.Errorf("view %q: join key %q is %s, got a %s value: %w", v.Name, jk.Name, jk.Type, val.Type(), ErrTypeMismatch)
		}
		b = append(b, typeByte(val.Type()))
		b = appendPayload(b, val)
	}
	return b, nil
}
