package feast

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

const (
	// QuiverConfigFile is the Quiver feature repo's configuration file.
	QuiverConfigFile = "quiver.yaml"
	// DefinitionsDir is the directory of the Quiver repo the definitions file is written to.
	DefinitionsDir = "features"
)

// DefinitionsFile is where Write puts the definitions, relative to the Quiver repo.
func (r *Result) DefinitionsFile() string {
	return DefinitionsDir + "/feast_" + r.Project + ".yaml"
}

// Files renders what Write writes, by path relative to the Quiver repo: the definitions file
// and, when the repo has no quiver.yaml yet, a quiver.yaml for the project (definitions under
// features/, the Feast data directories allowed, the embedded stores).
func (r *Result) Files() (map[string][]byte, error) {
	rel, err := filepath.Rel(r.Out, r.FeastRepo)
	if err != nil {
		rel = r.FeastRepo
	}
	header := fmt.Sprintf("Written by quiver import feast from Feast project %q (%s).\n"+
		"What was not converted, or not as it was, is in the import's report; see docs/from-feast.md.", r.Project, filepath.ToSlash(rel))
	defs, err := Marshal(r.Objects, header)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{r.DefinitionsFile(): defs}
	if !r.ConfigExists {
		var b bytes.Buffer
		fmt.Fprintf(&b, "# Written by quiver import feast; the stores are the embedded defaults (docs/cli.md, quiver.yaml).\n")
		cfg := struct {
			Project      string   `yaml:"project"`
			Definitions  []string `yaml:"definitions,flow"`
			AllowedPaths []string `yaml:"allowed_paths,flow,omitempty"`
		}{Project: r.Project, Definitions: []string{DefinitionsDir}, AllowedPaths: r.AllowedPaths}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", QuiverConfigFile, err)
		}
		b.Write(out)
		files[QuiverConfigFile] = b.Bytes()
	}
	return files, nil
}

// Write writes Files under the Quiver repo, creating directories as needed. A definitions
// file that exists with other content is an error wrapping ErrExists unless force is set;
// quiver.yaml is only ever created. It returns the paths written, relative to the repo.
func (r *Result) Write(force bool) ([]string, error) {
	files, err := r.Files()
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, p := range []string{r.DefinitionsFile(), QuiverConfigFile} {
		data, ok := files[p]
		if !ok {
			continue
		}
		full := filepath.Join(r.Out, filepath.FromSlash(p))
		prev, err := os.ReadFile(full)
		switch {
		case err == nil && bytes.Equal(prev, data):
			paths = append(paths, p)
			continue
		case err == nil && (!force || p == QuiverConfigFile):
			return nil, fmt.Errorf("%w: %s exists and differs from what the import would write; pass --force to overwrite it", ErrExists, full)
		case err != nil && !errors.Is(err, os.ErrNotExist):
			return nil, fmt.Errorf("read %s: %w", full, err)
		}
		if err := writeAtomic(full, data); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeAtomic writes a file through a temporary file renamed into place, so an interrupted
// import never leaves a half-written definitions file.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, werr)
	}
	return nil
}

// yamlUnmarshalLenient decodes the keys it knows of a YAML document and ignores the others.
func yamlUnmarshalLenient(data []byte, v any) error {
	err := yaml.Unmarshal(data, v)
	if err != nil && strings.Contains(err.Error(), "cannot unmarshal") {
		return nil // what decoded is kept; a mistyped key is quiver validate's to report
	}
	return err
}
