package serving

import (
	"context"
	"fmt"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/serving/model/onnx"
)

// ModelVersionLister is the part of the registry CheckModelRuntimes reads.
type ModelVersionLister interface {
	// ListModelVersions lists a project's registered versions; an empty name lists all.
	ListModelVersions(ctx context.Context, project, name string) ([]registry.ModelVersion, error)
}

// CheckModelRuntimes loads, at start, the model runtimes a server will need, so that a
// missing one is a clear error at start rather than at the first Predict: the ONNX Runtime
// library when any model declared in repo or registered in the project uses the onnx
// runtime. versions may be nil. The error wraps model.ErrUnavailable and names a model that
// needs the runtime.
func CheckModelRuntimes(ctx context.Context, repo *definitions.Repo, versions ModelVersionLister, project string, opts onnx.Options) error {
	needs := ""
	if repo != nil {
		for _, m := range repo.Models {
			if m.Runtime == definitions.RuntimeONNX {
				needs = fmt.Sprintf("model %q", m.Name)
				break
			}
		}
	}
	if needs == "" && versions != nil {
		vs, err := versions.ListModelVersions(ctx, project, "")
		if err != nil {
			return fmt.Errorf("list model versions: %w", err)
		}
		for _, v := range vs {
			if v.Runtime == definitions.RuntimeONNX {
				needs = fmt.Sprintf("model %q v%d", v.Name, v.Version)
				break
			}
		}
	}
	if needs == "" {
		return nil
	}
	lib := opts.LibraryPath
	if lib == "" {
		lib = "libonnxruntime.so"
	}
	if err := onnx.Init(lib); err != nil {
		return fmt.Errorf("%s uses the onnx runtime, but the ONNX Runtime library %s cannot be loaded; install it with scripts/onnxruntime.sh and pass its path with --onnxruntime-lib or QUIVER_ONNXRUNTIME_LIB: %w", needs, lib, err)
	}
	return nil
}
