package feast

import (
	"errors"
	"fmt"

	"github.com/quiverfs/quiver/definitions"
)

// Errors of Import and Write. Each wraps definitions.ErrInvalid: they all say that the input
// (the Feast repository, its registry, or the target directory) is not what an import needs.
var (
	// ErrNotFeastRepo: the directory has no feature_store.yaml.
	ErrNotFeastRepo = fmt.Errorf("not a Feast repository: %w", definitions.ErrInvalid)
	// ErrRegistry: the registry is not a local file, is missing, or is not a Feast registry.
	ErrRegistry = fmt.Errorf("feast registry: %w", definitions.ErrInvalid)
	// ErrExists: a file the import would write exists and overwriting was not asked for.
	ErrExists = fmt.Errorf("file exists: %w", definitions.ErrInvalid)
)

// errUntranslatable is why a Python transformation has no obvious CEL equivalent.
var errUntranslatable = errors.New("not plain arithmetic of the inputs")
