package training

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/registry"
)

// Warehouse layout. Everything a project writes under the warehouse lives in its own folder,
// projects/KEY/, so projects sharing one warehouse never touch each other's files. KEY is the
// project's storage key (offline/iceberg.ProjectKey): the name itself for a lower-case name,
// an escaped form of any other, so no two projects share a folder even where the file system
// folds case:
//
//	projects/KEY/datasets/sha256-HEX/        one dataset snapshot's content (manifest.json and
//	                                         Parquet files), named by its content id; every
//	                                         registered version with that content points at it
//	projects/KEY/datasets/.staging/bID/      the staging folder of dataset build ID (in flight)
//	projects/KEY/artifacts/sha256-HEX/       training outputs, by tree hash
//	projects/KEY/runs/RUN/                   Kubernetes jobs' outputs
//
// The offline store's Iceberg tables live in the project's own namespace (see
// offline/iceberg.ProjectNamespace) and its folder. Datasets built before projects had folders
// keep their registered location (datasets/NAME/vN) and stay readable, as do those a project
// whose name is not lower case built under projects/NAME/ before KEY was its folder.

// ProjectDir is the folder of one project's files under the warehouse.
func ProjectDir(warehouse, project string) string {
	return filepath.Join(warehouse, "projects", iceberg.ProjectKey(project))
}

// DatasetsDir is where a project's dataset snapshots live.
func DatasetsDir(warehouse, project string) string {
	return filepath.Join(ProjectDir(warehouse, project), "datasets")
}

// ContentDir is the folder of the snapshot whose content id is contentID ("sha256:HEX").
func ContentDir(warehouse, project, contentID string) string {
	return filepath.Join(DatasetsDir(warehouse, project), strings.Replace(contentID, ":", "-", 1))
}

// StagingRoot holds the staging folders of a project's dataset builds in flight.
func StagingRoot(warehouse, project string) string {
	return filepath.Join(DatasetsDir(warehouse, project), ".staging")
}

// StagingDir is the staging folder of one dataset build. The registry gives each build a
// unique id, so no two builds ever share one.
func StagingDir(warehouse, project string, build registry.DatasetBuildID) string {
	return filepath.Join(StagingRoot(warehouse, project), fmt.Sprintf("b%d", build))
}

// DatasetDir is where a registered dataset version's files are.
func DatasetDir(warehouse string, d registry.Dataset) string {
	return filepath.Join(warehouse, filepath.FromSlash(d.Location))
}
