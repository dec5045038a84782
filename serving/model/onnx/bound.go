//go:build cgo

package onnx

import (
	ort "github.com/yalue/onnxruntime_go"
)

// Each session keeps the input and output tensors of its last call and reuses them while calls
// have the same number of rows (almost always one, at inference time): creating an input
// tensor, and a Go tensor for each output after the run, is several cgo calls and allocations
// per call, as much as the run itself for a small model (docs/BENCHMARKS.md).

// maxBoundRows is the largest batch whose tensors a session keeps.
const maxBoundRows = 64

// session is a pooled ONNX Runtime session and the tensors of its last call.
type session struct {
	s    *ort.DynamicAdvancedSession
	rows int         // the rows in and outs are shaped for; 0: none kept
	in   ort.Value   // [rows, features]
	outs []ort.Value // [rows, the output's other dimensions]
}

// staticOutputs reports whether every output is a float, double, int32 or int64 tensor whose
// first dimension is the (dynamic) batch and the others fixed: then outputs can be allocated
// before the run.
func staticOutputs(outs []ort.InputOutputInfo) bool {
	for _, o := range outs {
		if o.OrtValueType != ort.ONNXTypeTensor || len(o.Dimensions) == 0 || o.Dimensions[0] != -1 {
			return false
		}
		for _, d := range o.Dimensions[1:] {
			if d <= 0 {
				return false
			}
		}
		switch o.DataType {
		case ort.TensorElementDataTypeFloat, ort.TensorElementDataTypeDouble, ort.TensorElementDataTypeInt32, ort.TensorElementDataTypeInt64:
		default:
			return false
		}
	}
	return true
}

// bind makes s's tensors fit rows × features, reusing them when they do. It returns false,
// keeping nothing, when they cannot be made (the caller runs unbound).
func (m *Model) bind(s *session, rows, features int) bool {
	if s.rows == rows {
		return true
	}
	s.release()
	if !m.static || rows > maxBoundRows || (m.input.Dimensions[0] > 0 && int(m.input.Dimensions[0]) != rows) {
		return false
	}
	var err error
	shape := ort.NewShape(int64(rows), int64(features))
	if m.input.DataType == ort.TensorElementDataTypeDouble {
		s.in, err = ort.NewEmptyTensor[float64](shape)
	} else {
		s.in, err = ort.NewEmptyTensor[float32](shape)
	}
	if err != nil {
		s.in = nil
		return false
	}
	s.outs = make([]ort.Value, len(m.outputs))
	for i, o := range m.outputs {
		dims := append([]int64{int64(rows)}, o.Dimensions[1:]...)
		shape := ort.NewShape(dims...)
		switch o.DataType {
		case ort.TensorElementDataTypeFloat:
			s.outs[i], err = ort.NewEmptyTensor[float32](shape)
		case ort.TensorElementDataTypeDouble:
			s.outs[i], err = ort.NewEmptyTensor[float64](shape)
		case ort.TensorElementDataTypeInt32:
			s.outs[i], err = ort.NewEmptyTensor[int32](shape)
		case ort.TensorElementDataTypeInt64:
			s.outs[i], err = ort.NewEmptyTensor[int64](shape)
		}
		if err != nil {
			s.outs[i] = nil
			s.release()
			return false
		}
	}
	s.rows = rows
	return true
}

// fill copies the batch's features into the bound input tensor.
func (s *session) fill(data []float32) {
	switch t := s.in.(type) {
	case *ort.Tensor[float32]:
		copy(t.GetData(), data)
	case *ort.Tensor[float64]:
		d := t.GetData()
		for i, x := range data {
			d[i] = float64(x)
		}
	}
}

// release destroys the session's kept tensors.
func (s *session) release() {
	if s.in != nil {
		_ = s.in.Destroy()
	}
	for _, o := range s.outs {
		if o != nil {
			_ = o.Destroy()
		}
	}
	s.in, s.outs, s.rows = nil, nil, 0
}
