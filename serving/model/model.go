// Package model declares the model runtimes serving runs predictions through: one Model
// interface, implemented by serving/model/onnx (ONNX Runtime in process) and serving/model/oip
// (a remote Open Inference Protocol server), and the Resolver that turns a model reference from
// a request into the version that answers and the feature service it was trained with.
package model

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/quiverfs/quiver/internal/errkind"
)

// Sentinel errors; runtimes wrap them with %w so serving can map them to gRPC codes.
var (
	// ErrNotFound: the model, version or alias does not exist.
	ErrNotFound = errkind.New(errkind.NotFound, "model not found")
	// ErrInvalidInput: the input does not fit the model (wrong width, unsupported type).
	ErrInvalidInput = errkind.New(errkind.Precondition, "invalid model input")
	// ErrUnavailable: the runtime cannot run now (remote server down, library missing).
	ErrUnavailable = errkind.New(errkind.Unavailable, "model runtime unavailable")
	// ErrClosed: the model was used after Close.
	ErrClosed = errkind.New(errkind.Unavailable, "model closed")
)

// Batch is a model's input: Rows rows of len(Features) values each, row-major in Data, in
// the order of Features (the feature service's declared order). Missing values are NaN.
type Batch struct {
	Rows     int
	Features []string
	Data     []float32
}

// Check reports whether the batch's dimensions agree.
func (b *Batch) Check() error {
	if b.Rows <= 0 || len(b.Features) == 0 {
		return fmt.Errorf("empty batch (%d rows, %d features): %w", b.Rows, len(b.Features), ErrInvalidInput)
	}
	if len(b.Data) != b.Rows*len(b.Features) {
		return fmt.Errorf("batch of %d rows × %d features holds %d values: %w", b.Rows, len(b.Features), len(b.Data), ErrInvalidInput)
	}
	return nil
}

// Tensor is one named output of a model. Shape starts with the batch dimension; exactly one
// of the data slices is set, with as many elements as the shape's product.
type Tensor struct {
	Name    string
	Shape   []int64
	Float32 []float32
	Float64 []float64
	Int64   []int64
	Int32   []int32
	Bool    []bool
}

// Len is the number of elements the tensor holds.
func (t *Tensor) Len() int {
	switch {
	case t.Float32 != nil:
		return len(t.Float32)
	case t.Float64 != nil:
		return len(t.Float64)
	case t.Int64 != nil:
		return len(t.Int64)
	case t.Int32 != nil:
		return len(t.Int32)
	case t.Bool != nil:
		return len(t.Bool)
	}
	return 0
}

// Model runs predictions. Implementations are safe for concurrent use; Predict honours ctx's
// deadline where the runtime allows it (remote calls do; an in-process ONNX run is not
// interrupted but is not started once ctx is done).
type Model interface {
	// Predict runs the model on a batch and returns its outputs, in the model's output order.
	Predict(ctx context.Context, in *Batch) ([]Tensor, error)
	// Close releases the model's resources. Predict must not be called afterwards.
	Close() error
}

// Ref names a model as a request does: by name and, optionally, a version or an alias
// (at most one). Neither means the current version.
type Ref struct {
	Name    string
	Version string
	Alias   string
}

// ParseRef parses NAME, NAME@vN, NAME@N or NAME@ALIAS.
func ParseRef(s string) Ref {
	name, rest, ok := strings.Cut(s, "@")
	if !ok {
		return Ref{Name: name}
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(rest, "v")); err == nil && (strings.HasPrefix(rest, "v") || rest == strconv.Itoa(n)) {
		return Ref{Name: name, Version: strconv.Itoa(n)}
	}
	return Ref{Name: name, Alias: rest}
}

func (r Ref) String() string {
	switch {
	case r.Version != "":
		return r.Name + "@" + r.Version
	case r.Alias != "":
		return r.Name + "@" + r.Alias
	}
	return r.Name
}

// Version is a resolved model version: what serving needs to open and feed it.
type Version struct {
	Model   string
	Version string
	// FeatureService is the service the version was trained with; serving feeds it exactly
	// those features, in that order.
	FeatureService string
	// Runtime is "onnx" or "oip".
	Runtime string
	// Path is the ONNX file (onnx runtime).
	Path string
	// Endpoint is the host:port of the OIP server (oip runtime); RemoteName and RemoteVersion
	// name the model there (default: Model, and the server's default version).
	Endpoint      string
	RemoteName    string
	RemoteVersion string
}

// Key identifies what a loaded model was opened from, for caches: two Versions with the same
// Key run the same model.
func (v Version) Key() string {
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s", v.Model, v.Version, v.Runtime, v.Path, v.Endpoint, v.RemoteName, v.RemoteVersion)
}
