package feast

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/proto"

	core "github.com/quiverfs/quiver/definitions/feast/internal/proto/feast/core"
)

// StoreConfigFile is the file at the root of every Feast repository.
const StoreConfigFile = "feature_store.yaml"

// maxRegistrySize bounds the registry file read into memory (Feast's own file registries are
// kilobytes to a few megabytes).
const maxRegistrySize = 256 << 20

// storeConfig is what the import reads of feature_store.yaml: the project, where the registry
// is, and the store settings it reports as having no equivalent in the definitions.
type storeConfig struct {
	Project      string
	Registry     string // the local registry file, absolute
	Provider     string
	OnlineStore  string // online_store type ("sqlite" when absent, as in Feast)
	OfflineStore string // offline_store type ("dask" when absent)
	Other        []string
}

// featureStoreYAML is feature_store.yaml's keys the import reads; the others are listed in
// storeConfig.Other.
type featureStoreYAML struct {
	Project      string    `yaml:"project"`
	Registry     yaml.Node `yaml:"registry"`
	Provider     string    `yaml:"provider"`
	OnlineStore  yaml.Node `yaml:"online_store"`
	OfflineStore yaml.Node `yaml:"offline_store"`
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// readStoreConfig reads repo/feature_store.yaml. registry, when not empty, is the registry
// file to read instead of the one it names. getenv expands ${VAR} in the registry path, as
// Feast does.
func readStoreConfig(repo, registry string, getenv func(string) string) (*storeConfig, error) {
	path := filepath.Join(repo, StoreConfigFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (a Feast repository is the directory `feast init` creates, holding %s)", ErrNotFeastRepo, repo, StoreConfigFile, StoreConfigFile)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var f featureStoreYAML
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: %s", ErrNotFeastRepo, path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if f.Project == "" {
		return nil, fmt.Errorf("%w: %s has no project: name the Feast project (project: my_project)", ErrNotFeastRepo, path)
	}
	c := &storeConfig{Project: f.Project, Provider: f.Provider, OnlineStore: "sqlite", OfflineStore: "dask"}
	if t := storeType(&f.OnlineStore); t != "" {
		c.OnlineStore = t
	}
	if t := storeType(&f.OfflineStore); t != "" {
		c.OfflineStore = t
	}
	var all map[string]yaml.Node
	if err := yaml.Unmarshal(data, &all); err == nil {
		for k := range all {
			switch k {
			case "project", "registry", "provider", "online_store", "offline_store":
			default:
				c.Other = append(c.Other, k)
			}
		}
		sort.Strings(c.Other)
	}
	if registry != "" {
		c.Registry, err = filepath.Abs(registry)
		if err != nil {
			return nil, fmt.Errorf("resolve registry %s: %w", registry, err)
		}
		return c, nil
	}
	p, err := registryPath(&f.Registry, path)
	if err != nil {
		return nil, err
	}
	p = envRef.ReplaceAllStringFunc(p, func(m string) string { return getenv(m[2 : len(m)-1]) })
	if scheme, rest, ok := strings.Cut(p, "://"); ok {
		if scheme != "file" {
			return nil, fmt.Errorf("%w: %s names registry %q, which is not a local file; quiver import feast reads a local file registry: copy it here (for example with your object store's CLI) and pass --registry FILE", ErrRegistry, path, p)
		}
		p = rest
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(repo, p)
	}
	c.Registry, err = filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("resolve registry %s: %w", p, err)
	}
	return c, nil
}

// registryPath reads feature_store.yaml's registry: a path, or a mapping with registry_type
// (file, the default) and path.
func registryPath(n *yaml.Node, file string) (string, error) {
	switch n.Kind {
	case 0:
		return "data/registry.db", nil // Feast's default
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.MappingNode:
		var r struct {
			RegistryType string `yaml:"registry_type"`
			Path         string `yaml:"path"`
		}
		if err := n.Decode(&r); err != nil {
			return "", fmt.Errorf("%w: %s: registry: %v", ErrNotFeastRepo, file, err)
		}
		if r.RegistryType != "" && r.RegistryType != "file" {
			return "", fmt.Errorf("%w: %s has registry_type %q; quiver import feast reads a local file registry (registry_type: file): point a copy of the repository at one (registry: data/registry.db), run feast apply there, and import that, or pass --registry FILE", ErrRegistry, file, r.RegistryType)
		}
		if r.Path == "" {
			return "", fmt.Errorf("%w: %s: registry has no path; want registry: data/registry.db or registry: {path: data/registry.db}", ErrNotFeastRepo, file)
		}
		return r.Path, nil
	}
	return "", fmt.Errorf("%w: %s: registry must be a path or a mapping with path", ErrNotFeastRepo, file)
}

// storeType is an online_store or offline_store setting's type: the scalar itself, or the
// mapping's type key.
func storeType(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value
	case yaml.MappingNode:
		var s struct {
			Type string `yaml:"type"`
		}
		if n.Decode(&s) == nil {
			return s.Type
		}
	}
	return ""
}

// readRegistry decodes a Feast registry file.
func readRegistry(path string) (*core.Registry, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: registry file %s does not exist: run feast apply in the Feast repository first", ErrRegistry, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read feast registry: %w", err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%w: registry %s is a directory; want the registry file feast apply writes (data/registry.db)", ErrRegistry, path)
	}
	if fi.Size() > maxRegistrySize {
		return nil, fmt.Errorf("%w: registry file %s is %d bytes; the limit is %d", ErrRegistry, path, fi.Size(), maxRegistrySize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read feast registry: %w", err)
	}
	var r core.Registry
	if err := proto.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %s is not a Feast registry file (%v)", ErrRegistry, path, err)
	}
	if len(data) > 0 && r.GetRegistrySchemaVersion() == "" && r.GetLastUpdated() == nil && len(r.GetProjects()) == 0 && len(r.GetEntities()) == 0 {
		return nil, fmt.Errorf("%w: %s is not a Feast registry file (it decodes to no registry fields)", ErrRegistry, path)
	}
	return &r, nil
}
