//go:build cgo

package onnx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/quiverfs/quiver/serving/model"
)

var env struct {
	mu   sync.Mutex
	path string // the library loaded, once initialized
}

// Init loads the ONNX Runtime library at libraryPath and initializes its environment, once per
// process. Calling it again with the same path is a no-op; with another path it fails.
func Init(libraryPath string) error {
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.path != "" {
		if env.path != libraryPath {
			return fmt.Errorf("onnx runtime: already loaded from %s, cannot load %s: %w", env.path, libraryPath, model.ErrUnavailable)
		}
		return nil
	}
	ort.SetSharedLibraryPath(libraryPath)
	if err := ort.InitializeEnvironment(); err != nil {
		return fmt.Errorf("onnx runtime: load %s (install it with scripts/onnxruntime.sh and pass its path): %w: %w", libraryPath, model.ErrUnavailable, err)
	}
	env.path = libraryPath
	return nil
}

// Model is an ONNX model with a pool of sessions. It implements model.Model.
type Model struct {
	name     string
	input    ort.InputOutputInfo
	outputs  []ort.InputOutputInfo
	outNames []string
	static   bool // staticOutputs: sessions keep their tensors between calls (bound.go)
	pool     chan *session
	all      []*session

	mu     sync.RWMutex
	closed bool
}

var _ model.Model = (*Model)(nil)

// Open loads the ONNX model file at path.
func Open(path string, opts Options) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx model: %w", err)
	}
	return OpenBytes(path, data, opts)
}

// OpenBytes loads an ONNX model from its serialized form; name is used in messages.
func OpenBytes(name string, data []byte, opts Options) (*Model, error) {
	opts = opts.withDefaults()
	if err := Init(opts.LibraryPath); err != nil {
		return nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, fmt.Errorf("onnx model %s: %w", name, err)
	}
	if len(ins) != 1 || ins[0].OrtValueType != ort.ONNXTypeTensor || len(ins[0].Dimensions) != 2 {
		return nil, fmt.Errorf("onnx model %s: want one tensor input of shape [batch, features], have %v: %w", name, ins, model.ErrInvalidInput)
	}
	if dt := ins[0].DataType; dt != ort.TensorElementDataTypeFloat && dt != ort.TensorElementDataTypeDouble {
		return nil, fmt.Errorf("onnx model %s: input %q is %s; want float or double: %w", name, ins[0].Name, ins[0].String(), model.ErrInvalidInput)
	}
	m := &Model{name: name, input: ins[0], outputs: outs, static: staticOutputs(outs), pool: make(chan *session, opts.Sessions)}
	for _, o := range outs {
		m.outNames = append(m.outNames, o.Name)
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("onnx model %s: session options: %w", name, err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
		return nil, fmt.Errorf("onnx model %s: %w", name, err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("onnx model %s: %w", name, err)
	}
	if opts.CUDA {
		cuda, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("onnx model %s: CUDA provider: %w: %w", name, model.ErrUnavailable, err)
		}
		defer cuda.Destroy()
		if err := cuda.Update(map[string]string{"device_id": fmt.Sprint(opts.DeviceID)}); err != nil {
			return nil, fmt.Errorf("onnx model %s: CUDA provider: %w", name, err)
		}
		if err := so.AppendExecutionProviderCUDA(cuda); err != nil {
			return nil, fmt.Errorf("onnx model %s: CUDA provider: %w: %w", name, model.ErrUnavailable, err)
		}
	}
	for range opts.Sessions {
		s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{m.input.Name}, m.outNames, so)
		if err != nil {
			m.destroy()
			return nil, fmt.Errorf("onnx model %s: new session: %w", name, err)
		}
		m.all = append(m.all, &session{s: s})
		m.pool <- m.all[len(m.all)-1]
	}
	return m, nil
}

// Inputs returns the number of features the model takes per row, or -1 when its input's
// feature dimension is dynamic.
func (m *Model) Inputs() int64 { return m.input.Dimensions[1] }

// Outputs returns the names of the model's outputs, in order.
func (m *Model) Outputs() []string { return append([]string(nil), m.outNames...) }

// Predict implements model.Model.
func (m *Model) Predict(ctx context.Context, in *model.Batch) ([]model.Tensor, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	if w := m.input.Dimensions[1]; w > 0 && int(w) != len(in.Features) {
		return nil, fmt.Errorf("onnx model %s takes %d features per row, the feature service gives %d: %w", m.name, w, len(in.Features), model.ErrInvalidInput)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, fmt.Errorf("onnx model %s: %w", m.name, model.ErrClosed)
	}
	var s *session
	select {
	case s = <-m.pool:
	case <-ctx.Done():
		return nil, fmt.Errorf("onnx model %s: wait for a session: %w", m.name, ctx.Err())
	}
	defer func() { m.pool <- s }()

	if m.bind(s, in.Rows, len(in.Features)) {
		s.fill(in.Data)
		if err := s.s.Run([]ort.Value{s.in}, s.outs); err != nil {
			s.release()
			return nil, fmt.Errorf("onnx model %s: run: %w", m.name, err)
		}
		return m.results(s.outs)
	}
	shape := ort.NewShape(int64(in.Rows), int64(len(in.Features)))
	var input ort.Value
	var err error
	if m.input.DataType == ort.TensorElementDataTypeDouble {
		d := make([]float64, len(in.Data))
		for i, x := range in.Data {
			d[i] = float64(x)
		}
		input, err = ort.NewTensor(shape, d)
	} else {
		input, err = ort.NewTensor(shape, in.Data)
	}
	if err != nil {
		return nil, fmt.Errorf("onnx model %s: input tensor: %w", m.name, err)
	}
	defer input.Destroy()
	outs := make([]ort.Value, len(m.outNames))
	defer func() {
		for _, o := range outs {
			if o != nil {
				_ = o.Destroy()
			}
		}
	}()
	if err := s.s.Run([]ort.Value{input}, outs); err != nil {
		return nil, fmt.Errorf("onnx model %s: run: %w", m.name, err)
	}
	return m.results(outs)
}

// results copies the outputs of a run out of its tensors.
func (m *Model) results(outs []ort.Value) ([]model.Tensor, error) {
	res := make([]model.Tensor, len(outs))
	for i, o := range outs {
		t := model.Tensor{Name: m.outNames[i], Shape: append([]int64(nil), o.GetShape()...)}
		switch v := o.(type) {
		case *ort.Tensor[float32]:
			t.Float32 = append([]float32(nil), v.GetData()...)
		case *ort.Tensor[float64]:
			t.Float64 = append([]float64(nil), v.GetData()...)
		case *ort.Tensor[int64]:
			t.Int64 = append([]int64(nil), v.GetData()...)
		case *ort.Tensor[int32]:
			t.Int32 = append([]int32(nil), v.GetData()...)
		default:
			return nil, fmt.Errorf("onnx model %s: output %q has an unsupported type (%T): %w", m.name, m.outNames[i], o, model.ErrInvalidInput)
		}
		res[i] = t
	}
	return res, nil
}

// Close destroys the sessions, after in-flight predictions finish.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.destroy()
}

func (m *Model) destroy() error {
	var errs []error
	for _, s := range m.all {
		s.release()
		errs = append(errs, s.s.Destroy())
	}
	m.all = nil
	return errors.Join(errs...)
}
