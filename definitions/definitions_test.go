package definitions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadGoodRepo(t *testing.T) {
	repo, err := Load("testdata/good/shop")
	require.NoError(t, err)
	require.Equal(t, []string{"merchant", "user"}, repo.Names(KindEntity))
	require.Equal(t, []string{"merchant_events", "user_activity", "web_activity"}, repo.Names(KindSource))

	v := repo.FeatureView("user_stats")
	require.NotNil(t, v)
	require.Equal(t, 7*24*time.Hour, v.TTL.Std())
	require.True(t, v.Online)
	require.Equal(t, Type{Elem: Float32, Array: true}, v.Features[2].Type)
	require.Equal(t, Pos{File: "views.yml", Line: 2, Col: 5}, v.Pos)
	require.False(t, repo.FeatureView("user_merchant").Online)
	require.Equal(t, Duration(0), repo.FeatureView("merchant_stats").TTL)

	keys := repo.JoinKeys(repo.FeatureView("user_merchant"))
	require.Equal(t, []string{"user_id", "merchant_id"}, []string{keys[0].Name, keys[1].Name})

	feats, err := repo.ResolveService("churn_v1")
	require.NoError(t, err)
	var refs []string
	for _, f := range feats {
		refs = append(refs, f.Ref())
	}
	require.Equal(t, []string{"user_stats:clicks_7d", "user_stats:spend_30d", "merchant_stats:rating", "merchant_stats:open"}, refs)

	j := repo.TrainingJob("churn_train")
	require.Equal(t, int64(10), j.Params["epochs"].Default)
	require.Equal(t, 0.01, j.Params["lr"].Default)
	require.Nil(t, j.Params["arch"].Default)
	require.Equal(t, Resources{GPU: 1, CPU: "4", Memory: "16Gi"}, j.Resources)
	require.Equal(t, 2, j.Retries)

	_, err = repo.ResolveService("churn_v2")
	require.ErrorContains(t, err, `unknown feature service "churn_v2"`)
	require.ErrorContains(t, err, `did you mean "churn_v1"?`)
}

// TestLoadBadRepoReportsEveryError plants errors in two files and expects every one of them,
// each with its file:line:col, in one run.
func TestLoadBadRepoReportsEveryError(t *testing.T) {
	_, err := Load("testdata/bad")
	require.Error(t, err)
	require.ErrorIs(t, err, ErrInvalid)
	want, rerr := os.ReadFile("testdata/bad/expected.txt")
	require.NoError(t, rerr)
	require.Equal(t, strings.TrimSpace(string(want)), err.Error())
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"syntax", "entities:\n  - name: [unclosed\n", "f.yaml:1:1: invalid YAML: did not find expected ',' or ']'"},
		{"syntax with line", "entities:\n  - name: a\n\tjoin_keys: []\n", "f.yaml:2:1: invalid YAML: found a tab character that violates indentation"},
		{"top level list", "- a\n- b\n", `f.yaml:1:1: definitions file must be a mapping`},
		{"unknown top key", "entitys: []\n", `f.yaml:1:1: unknown key "entitys" in definitions file (valid keys: entities, sources, request_sources, feature_views, on_demand_feature_views, feature_services, models, training_jobs); did you mean "entities"?`},
		{"kind not a list", "entities: {name: x}\n", "f.yaml:1:11: entities must be a list of entitys"},
		{"no name", "entities:\n  - join_keys: [{name: a, type: int64}]\n", "f.yaml:2:5: entity has no name"},
		{"bad name", "entities:\n  - name: user-id\n    join_keys: [{name: a, type: int64}]\n", `f.yaml:2:11: invalid entity name "user-id"`},
		{"repeated key", "entities:\n  - name: a\n    name: b\n    join_keys: [{name: a, type: int64}]\n", `f.yaml:3:5: key "name" appears twice in entity`},
		{"wrong scalar type", "feature_views:\n  - name: v\n    source: s\n    online: yes please\n    features: [{name: a, type: int64}]\n", "f.yaml:4:13: feature view online must be true or false"},
		{"no source kind", "sources:\n  - name: s\n    timestamp_field: ts\n", `f.yaml:2:5: source "s" has no kind`},
		{"trino query and table", "sources:\n  - name: s\n    trino: {query: q, table: t}\n    timestamp_field: ts\n", "f.yaml:3:12: trino source needs exactly one of query or table"},
		{"iceberg without namespace", "sources:\n  - name: s\n    iceberg: {table: t}\n    timestamp_field: ts\n", `iceberg table "t" must be namespace.table`},
		{"missing timestamp", "sources:\n  - name: s\n    parquet: {path: x}\n", `source "s" has no timestamp_field`},
		{"feature without type", "feature_views:\n  - name: v\n    source: s\n    features: [{name: a}]\n", `feature "a" has no type`},
		{"bad ref form", "feature_services:\n  - name: s\n    features: [clicks]\n", `feature reference "clicks" is not of the form view:feature`},
		{"bad param default", "training_jobs:\n  - name: j\n    feature_service: s\n    command: [x]\n    params: {n: {type: int, default: ten}}\n", `param "n" default: param value "ten" is not an int`},
		{"bad memory", "training_jobs:\n  - name: j\n    feature_service: s\n    command: [x]\n    resources: {memory: lots}\n", `resources memory "lots" is not a memory quantity`},
		{"negative gpu", "training_jobs:\n  - name: j\n    feature_service: s\n    command: [x]\n    resources: {gpu: -1}\n", "resources gpu must be 0 or more"},
		{"oip needs endpoint", "models:\n  - name: m\n    feature_service: s\n    runtime: oip\n", "the oip runtime needs endpoint"},
		{"merge key", "entities:\n  - &e {name: a, join_keys: [{name: a, type: int64}]}\n  - <<: *e\n    name: b\n", "YAML merge keys (<<) are not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tc.yaml))
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRepoErrors(t *testing.T) {
	base := `
entities:
  - name: user
    join_keys: [{ name: user_id, type: int64 }]
  - name: account
    join_keys: [{ name: user_id, type: string }]
sources:
  - name: src
    parquet: { path: x.parquet }
    timestamp_field: ts
feature_views:
  - name: a
    entities: [user]
    source: src
    features: [{ name: clicks, type: int64 }, { name: spend, type: float64 }]
  - name: b
    entities: [user]
    source: src
    features: [{ name: clicks, type: int32 }]
models:
  - name: m
    feature_service: svc_a
    runtime: onnx
`
	cases := []struct {
		name, yaml, want string
	}{
		{"duplicate name", "entities:\n  - name: user\n    join_keys: [{ name: id, type: int64 }]\n", `f2.yaml:2:5: duplicate entity "user"; first declared at f1.yaml:3:5`},
		{"view unknown source", "feature_views:\n  - name: c\n    entities: [user]\n    source: srcc\n    features: [{ name: x, type: int64 }]\n", `feature view "c" refers to unknown source "srcc" (declared sources: "src"); did you mean "src"?`},
		{"view unknown entity", "feature_views:\n  - name: c\n    entities: [usr]\n    source: src\n    features: [{ name: x, type: int64 }]\n", `refers to unknown entity "usr"`},
		{"join key collision", "feature_views:\n  - name: c\n    entities: [user, account]\n    source: src\n    features: [{ name: x, type: int64 }]\n", `entities "user" and "account" both have join key "user_id"`},
		{"feature named like key", "feature_views:\n  - name: c\n    entities: [user]\n    source: src\n    features: [{ name: user_id, type: int64 }]\n", `feature "user_id" has the name of a join key`},
		{"reserved feature", "feature_views:\n  - name: c\n    entities: [user]\n    source: src\n    features: [{ name: event_ts, type: int64 }]\n", `reserved column name`},
		{"duplicate feature", "feature_views:\n  - name: c\n    entities: [user]\n    source: src\n    features: [{ name: x, type: int64 }, { name: x, type: bool }]\n", `has feature "x" twice`},
		{"unknown feature", "feature_services:\n  - name: svc_a\n    features: [a:clickz]\n", `unknown feature "clickz" of view "a" (its features: "clicks", "spend"); did you mean "clicks"?`},
		{"collision in service", "feature_services:\n  - name: svc_a\n    features: [a:*, b:clicks]\n", `feature name "clicks" comes from both "a" and "b"`},
		{"same feature twice", "feature_services:\n  - name: svc_a\n    features: [a:clicks, a:*]\n", `selects a:clicks more than once`},
		{"model unknown service", "feature_services:\n  - name: svc_b\n    features: [a:clicks]\n", `model "m" refers to unknown feature service "svc_a"`},
		{"job registers model of other service", "feature_services:\n  - name: svc_a\n    features: [a:clicks]\n  - name: svc_b\n    features: [a:spend]\ntraining_jobs:\n  - name: j\n    feature_service: svc_b\n    command: [x]\n    register_model: m\n", `trains on feature service "svc_b" but registers model "m"`},
		{"float join key", "entities:\n  - name: geo\n    join_keys: [{ name: lat, type: float64 }]\n", `join keys must be int32, int64, string, bytes, bool or timestamp`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "f1.yaml"), []byte(base), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "f2.yaml"), []byte(tc.yaml), 0o644))
			_, err := Load(dir)
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestLoadSkipsConfigAndHiddenDirs(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "quiver.yaml"), []byte("project: x\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ".github"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".github", "ci.yaml"), []byte("on: push\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "features"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "features", "e.yaml"), []byte("entities:\n  - name: u\n    join_keys: [{name: id, type: int64}]\n"), 0o644))
	repo, err := Load(dir)
	require.NoError(t, err)
	require.Equal(t, []string{"u"}, repo.Names(KindEntity))

	repo, err = Load(dir, "features")
	require.NoError(t, err)
	require.Len(t, repo.Entities, 1)
}

func TestTypes(t *testing.T) {
	for _, s := range []string{"int32", "int64", "float32", "float64", "bool", "string", "bytes", "timestamp", "array<int64>", "array<string>"} {
		typ, err := ParseType(s)
		require.NoError(t, err, s)
		require.Equal(t, s, typ.String())
	}
	for _, s := range []string{"", "int", "array<>", "array<array<int64>>", "array<int64", "Int64"} {
		_, err := ParseType(s)
		require.Error(t, err, s)
	}
}

func TestDurations(t *testing.T) {
	good := map[string]time.Duration{"0": 0, "30s": 30 * time.Second, "15m": 15 * time.Minute, "12h": 12 * time.Hour, "7d": 7 * 24 * time.Hour, "90m": 90 * time.Minute}
	for s, want := range good {
		d, err := ParseDuration(s)
		require.NoError(t, err, s)
		require.Equal(t, want, d.Std(), s)
		require.Equal(t, s, d.String())
	}
	require.Equal(t, "1d", Duration(24*time.Hour).String())
	for _, s := range []string{"", "7", "7days", "-1d", "+1d", "1.5h", "1w", "d", "99999999999999d"} {
		_, err := ParseDuration(s)
		require.Error(t, err, s)
	}
}

func TestHashIsCanonical(t *testing.T) {
	a, err := Parse("a.yaml", []byte("entities:\n  - name: u\n    tags: {b: '2', a: '1'}\n    join_keys: [{name: id, type: int64}]\n"))
	require.NoError(t, err)
	b, err := Parse("sub/b.yaml", []byte("\n\nentities:\n- join_keys:\n  - type: int64\n    name: id\n  tags:\n    a: '1'\n    b: '2'\n  name: u\n"))
	require.NoError(t, err)
	ha, err := Hash(a.Objects[0])
	require.NoError(t, err)
	hb, err := Hash(b.Objects[0])
	require.NoError(t, err)
	require.Equal(t, ha, hb, "position and key order must not change the hash")
	require.True(t, strings.HasPrefix(ha, "sha256:"))

	c, err := Parse("c.yaml", []byte("entities:\n  - name: u\n    join_keys: [{name: id, type: int32}]\n"))
	require.NoError(t, err)
	hc, _ := Hash(c.Objects[0])
	require.NotEqual(t, ha, hc)
}

func TestSpecRoundTrip(t *testing.T) {
	repo, err := Load("testdata/good/shop")
	require.NoError(t, err)
	for _, o := range repo.Objects() {
		spec, err := Spec(o)
		require.NoError(t, err)
		back, err := DecodeSpec(o.ObjectKind(), spec)
		require.NoError(t, err)
		again, err := Spec(back)
		require.NoError(t, err)
		require.Equal(t, string(spec), string(again), "%s %s", o.ObjectKind(), o.ObjectName())
	}
	_, err = DecodeSpec(KindEntity, []byte(`{"name":"u","join_keys":[],"future_field":1}`))
	require.Error(t, err)
}

func TestPlan(t *testing.T) {
	repo, err := Load("testdata/good/shop")
	require.NoError(t, err)
	changes, err := Plan(repo, nil)
	require.NoError(t, err)
	require.Len(t, changes, len(repo.Objects()))
	for _, c := range changes {
		require.Equal(t, OpAdd, c.Op)
	}
	require.Equal(t, KindEntity, changes[0].Kind)
	require.Equal(t, KindTrainingJob, changes[len(changes)-1].Kind)

	// Apply everything, then change one feature's type and drop a view.
	var applied []Applied
	for _, c := range changes {
		applied = append(applied, Applied{Kind: c.Kind, Name: c.Name, Version: 1, Hash: c.Hash, Spec: c.Spec})
	}
	applied = append(applied, Applied{Kind: KindFeatureView, Name: "old_view", Version: 3, Hash: "sha256:x", Spec: []byte(`{}`)})
	require.NoError(t, err)
	v := repo.FeatureView("user_stats")
	v.Features[0].Type = MustType("int32")
	v.Features = append(v.Features, Field{Name: "country", Type: MustType("string")})

	changes, err = Plan(repo, applied)
	require.NoError(t, err)
	require.Len(t, changes, 2)
	require.Equal(t, Change{Op: OpRemove, Kind: KindFeatureView, Name: "old_view", FromVersion: 3}, changes[0])
	require.Equal(t, OpChange, changes[1].Op)
	require.Equal(t, "user_stats", changes[1].Name)
	require.Equal(t, 1, changes[1].FromVersion)
	require.Equal(t, []FieldDiff{
		{Path: "features[clicks_7d].type", Old: `"int64"`, New: `"int32"`, Breaking: true, Reason: ReasonTypeChange},
		{Path: "features[country].name", New: `"country"`, Reason: ReasonNewFeature},
		{Path: "features[country].type", New: `"string"`, Reason: ReasonNewFeature},
	}, changes[1].Fields)
	require.True(t, changes[1].Breaking)
	require.Equal(t, []string{"user_stats"}, changes[1].Generations)
	require.Equal(t, []string{`feature_view user_stats: features[clicks_7d].type "int64" -> "int32" (` + ReasonTypeChange + `)`}, BreakingFields(changes))
}

// TestClassifyChange: every kind of change is compatible or breaking, field by field.
func TestClassifyChange(t *testing.T) {
	base := func(t *testing.T) *Repo {
		repo, err := Load("testdata/good/shop")
		require.NoError(t, err)
		return repo
	}
	applied := func(t *testing.T) []Applied {
		repo := base(t)
		changes, err := Plan(repo, nil)
		require.NoError(t, err)
		var out []Applied
		for _, c := range changes {
			out = append(out, Applied{Kind: c.Kind, Name: c.Name, Version: 1, Hash: c.Hash, Spec: c.Spec})
		}
		return out
	}
	cases := []struct {
		name        string
		edit        func(r *Repo)
		breaking    bool
		reasons     []string
		generations []string
	}{
		{"widen int64 stays", func(r *Repo) { r.FeatureView("user_stats").Features[0].Type = MustType("int64") }, false, nil, nil},
		{"narrow int64 to int32", func(r *Repo) { r.FeatureView("user_stats").Features[0].Type = MustType("int32") }, true, []string{ReasonTypeChange}, []string{"user_stats"}},
		{"float64 to string", func(r *Repo) { r.FeatureView("user_stats").Features[1].Type = MustType("string") }, true, []string{ReasonTypeChange}, []string{"user_stats"}},
		{"new feature", func(r *Repo) {
			v := r.FeatureView("user_stats")
			v.Features = append(v.Features, Field{Name: "n", Type: MustType("int32")})
		}, false, []string{ReasonNewFeature, ReasonNewFeature}, nil},
		{"feature removed", func(r *Repo) {
			v := r.FeatureView("user_stats")
			v.Features = v.Features[1:]
		}, true, []string{ReasonFeatureRemoved, ReasonFeatureRemoved}, []string{"user_stats"}},
		{"ttl, description and tags", func(r *Repo) {
			v := r.FeatureView("user_stats")
			v.TTL = Duration(3 * 24 * 3600e9)
			v.Description = "changed"
			v.Tags = map[string]string{"owner": "someone else"}
		}, false, nil, nil},
		{"source changed", func(r *Repo) { r.FeatureView("user_stats").Source = "elsewhere" }, true, []string{ReasonSource}, []string{"user_stats"}},
		{"entity join key type", func(r *Repo) {
			for _, o := range r.Objects() {
				if e, ok := o.(*Entity); ok && e.Name == "user" {
					e.JoinKeys[0].Type = MustType("string")
				}
			}
		}, true, []string{ReasonJoinKey}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo := base(t)
			tc.edit(repo)
			changes, err := Plan(repo, applied(t))
			require.NoError(t, err)
			breaking := false
			var reasons []string
			var gens []string
			for _, c := range changes {
				breaking = breaking || c.Breaking
				gens = append(gens, c.Generations...)
				for _, f := range c.Fields {
					if f.Breaking || f.Reason == ReasonNewFeature {
						reasons = append(reasons, f.Reason)
					}
					require.NotEmpty(t, f.Reason, "%s %s", c.Name, f.Path)
				}
			}
			require.Equal(t, tc.breaking, breaking, "%+v", changes)
			if tc.reasons != nil || breaking {
				require.Equal(t, tc.reasons, reasons)
			}
			if tc.name != "entity join key type" {
				require.Equal(t, tc.generations, gens)
			} else {
				require.NotEmpty(t, gens, "the views keyed by user start a new generation")
			}
		})
	}
	require.True(t, Widens(MustType("int32"), MustType("int64")))
	require.True(t, Widens(MustType("float32"), MustType("float64")))
	require.False(t, Widens(MustType("int64"), MustType("int32")))
	require.False(t, Widens(MustType("int32"), MustType("float64")))
	require.False(t, Widens(MustType("array<int32>"), MustType("array<int64>")))
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"views": KindFeatureView, "view": KindFeatureView, "feature-views": KindFeatureView, "jobs": KindTrainingJob, "Entities": KindEntity, "service": KindFeatureService} {
		k, err := ParseKind(in)
		require.NoError(t, err)
		require.Equal(t, want, k)
	}
	_, err := ParseKind("tables")
	require.ErrorContains(t, err, "valid kinds")
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/good/shop/entities.yaml", "testdata/good/shop/views.yml", "testdata/bad/two_files_a.yaml", "testdata/bad/two_files_b.yaml"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("entities: [&a {name: x, join_keys: [*a]}]"))
	// Alias-heavy input (issue 18): a small bomb, the bomb, nested "billion laughs"
	// aliases, and anchors shared legitimately.
	f.Add(aliasBomb(20))
	f.Add(aliasBomb(1000))
	f.Add([]byte("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\nentities: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"))
	f.Add([]byte("entities:\n  - {name: a, join_keys: &k [{name: id, type: int64}], tags: &t {o: g}}\n  - {name: b, join_keys: *k, tags: *t}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("Parse returned %T, want ErrorList", err)
			}
			for _, e := range list {
				if e.Pos.Line < 1 && e.Omitted == 0 {
					t.Fatalf("error without a line: %v", e)
				}
			}
		}
		if _, err := NewRepo(file.Objects); err != nil {
			if list := ErrorList(nil); !errors.As(err, &list) {
				t.Fatalf("NewRepo returned %T, want ErrorList", err)
			}
		}
		if err != nil {
			return
		}
		for _, o := range file.Objects {
			spec, err := Spec(o)
			if err != nil {
				t.Fatalf("spec: %v", err)
			}
			if _, err := DecodeSpec(o.ObjectKind(), spec); err != nil {
				t.Fatalf("decode own spec of %s %q: %v", o.ObjectKind(), o.ObjectName(), err)
			}
		}
	})
}
