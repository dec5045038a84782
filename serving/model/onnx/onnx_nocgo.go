//go:build !cgo

package onnx

import (
	"context"
	"fmt"

	"github.com/quiverfs/quiver/serving/model"
)

// Model is unavailable in builds without cgo.
type Model struct{}

// Open fails: ONNX Runtime needs cgo.
func Open(path string, opts Options) (*Model, error) {
	return nil, fmt.Errorf("onnx model %s: this quiver was built without cgo, which ONNX Runtime needs: %w", path, model.ErrUnavailable)
}

// OpenBytes fails: ONNX Runtime needs cgo.
func OpenBytes(name string, data []byte, opts Options) (*Model, error) { return Open(name, opts) }

// Predict implements model.Model.
func (m *Model) Predict(ctx context.Context, in *model.Batch) ([]model.Tensor, error) {
	return nil, model.ErrUnavailable
}

// Inputs returns -1.
func (m *Model) Inputs() int64 { return -1 }

// Outputs returns nil.
func (m *Model) Outputs() []string { return nil }

// Close implements model.Model.
func (m *Model) Close() error { return nil }

// Init fails: ONNX Runtime needs cgo.
func Init(libraryPath string) error {
	return fmt.Errorf("onnx runtime: built without cgo: %w", model.ErrUnavailable)
}
