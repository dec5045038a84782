package layers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/quiverfs/quiver"

// layers are the module's packages from the bottom up (docs/architecture.md). A package
// belongs to the entry with the longest matching prefix; it may import packages of its own
// entry and of entries of a lower rank, never of a higher one, and of another entry of the
// same rank only where peers allows it.
var layers = []struct {
	rank     int
	prefixes []string
}{
	// Byte-level helpers of the standard library's kind, below everything.
	{-10, []string{"internal/strbin"}},
	// Leaves: the value type, the generated wire types, the example's embedded data, and
	// helpers that import only the standard library, third-party modules and value.
	{0, []string{"value", "proto", "examples/shop", "internal/errkind", "internal/yamlx", "internal/aggfn", "internal/tabular",
		"internal/redact", "internal/fsutil", "internal/bytesize", "internal/warehouselock", "internal/testenv",
		"internal/benchdata", "internal/layers"}},
	{10, []string{"definitions"}},
	// The stores and the other building blocks of the domain; the configuration file.
	{20, []string{"registry", "online", "offline", "transform", "serving/auth", "serving/model", "serving/client", "internal/config"}},
	// Above the stores: the catalog, and the fold of offline batches into online rows.
	{30, []string{"catalog", "online/fold", "internal/housekeeping"}},
	// The domain packages that work on an opened catalog.
	{40, []string{"serving", "ingest", "materialize", "training", "ui"}},
	{50, []string{"project"}},
	{55, []string{"internal/scaffold"}},
	{60, []string{"cmd"}},
	// Tools and examples that use the packages.
	{70, []string{"internal/cmd", "examples/shop/gen", "examples/shop/trainer"}},
}

// peers are the imports allowed between entries of the same rank: serving is the gRPC and
// HTTP adapter of ingestion (PushFeatures), ui shows training's dataset statistics.
var peers = map[[2]string]bool{
	{"serving", "ingest"}: true,
	{"ui", "training"}:    true,
	// transform evaluates over online.Value until the value package owns the value type.
	{"transform", "online"}: true,
}

// never are packages a package must not link, directly or through others.
var never = map[string][]string{
	"serving": {"materialize"},
}

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// entry returns the prefix and rank of a package path relative to the module.
func entry(rel string) (string, int, bool) {
	best, rank := "", -1
	for _, l := range layers {
		for _, p := range l.prefixes {
			if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > len(best) {
				best, rank = p, l.rank
			}
		}
	}
	return best, rank, best != ""
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	touchSources(t)
	cmd := exec.Command("go", "list", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// touchSources opens every Go file of the module, so that go test's cache knows this test
// reads them (it runs go list, whose reads it cannot see) and runs it again when one changes.
func touchSources(t *testing.T) {
	t.Helper()
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	err = filepath.WalkDir(strings.TrimSpace(string(root)), func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != strings.TrimSpace(string(root)):
			return filepath.SkipDir
		case !d.IsDir() && strings.HasSuffix(path, ".go"):
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read the module's sources: %v", err)
	}
}

// TestImportDirection fails naming every import that runs against the layers above, and
// every package that links one it must not.
func TestImportDirection(t *testing.T) {
	var bad []string
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		from, fromRank, ok := entry(rel)
		if !ok {
			bad = append(bad, fmt.Sprintf("%s: in no layer (add it to layers)", rel))
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to := strings.TrimPrefix(imp, module+"/")
			toEntry, toRank, ok := entry(to)
			switch {
			case !ok:
				bad = append(bad, fmt.Sprintf("%s → %s: %s is in no layer", rel, to, to))
			case toEntry == from:
			case toRank > fromRank:
				bad = append(bad, fmt.Sprintf("%s → %s: %s (rank %d) imports a higher layer (rank %d)", rel, to, from, fromRank, toRank))
			case toRank == fromRank && !peers[[2]string{from, toEntry}]:
				bad = append(bad, fmt.Sprintf("%s → %s: %s and %s are peers (rank %d); peers do not import each other", rel, to, from, toEntry, toRank))
			}
		}
		for _, banned := range never[rel] {
			if slices.Contains(p.Deps, module+"/"+banned) {
				bad = append(bad, fmt.Sprintf("%s links %s (through %s)", rel, banned, strings.Join(via(t, p, module+"/"+banned), ", ")))
			}
		}
	}
	if len(bad) > 0 {
		t.Fatalf("imports against the direction of docs/architecture.md:\n  %s", strings.Join(bad, "\n  "))
	}
}

// via lists p's direct module imports that link target.
func via(t *testing.T, p pkg, target string) []string {
	t.Helper()
	var out []string
	for _, imp := range p.Imports {
		if imp == target {
			out = append(out, strings.TrimPrefix(imp, module+"/"))
			continue
		}
		if !strings.HasPrefix(imp, module+"/") {
			continue
		}
		deps, err := exec.Command("go", "list", "-deps", imp).Output()
		if err == nil && slices.Contains(strings.Fields(string(deps)), target) {
			out = append(out, strings.TrimPrefix(imp, module+"/"))
		}
	}
	return out
}
