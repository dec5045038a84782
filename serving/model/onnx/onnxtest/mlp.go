// Package onnxtest builds small ONNX models in Go, for tests, benchmarks and the demo: a
// multi-layer perceptron written directly in the ONNX protobuf format (no Python, no onnx
// package), and a Go evaluation of the same network to check runtimes against.
package onnxtest

import (
	"encoding/binary"
	"math"
	"math/rand/v2"

	"google.golang.org/protobuf/encoding/protowire"
)

// MLP is a perceptron with one ReLU hidden layer and a sigmoid output:
// y = sigmoid(relu(x·W1 + B1)·W2 + B2), x of shape [batch, In], y of shape [batch, 1].
type MLP struct {
	In, Hidden int
	W1         []float32 // In × Hidden, row-major
	B1         []float32 // Hidden
	W2         []float32 // Hidden
	B2         float32
	// Impute, if set (one value per input), replaces NaN inputs — missing feature values, as
	// serving sends them — inside the graph (IsNaN + Where) before the first layer.
	Impute []float32
}

// NewMLP returns an MLP with weights drawn from a seeded generator, so a seed always gives
// the same model.
func NewMLP(in, hidden int, seed uint64) *MLP {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	m := &MLP{In: in, Hidden: hidden, W1: make([]float32, in*hidden), B1: make([]float32, hidden), W2: make([]float32, hidden)}
	for i := range m.W1 {
		m.W1[i] = float32(r.NormFloat64() * 0.5)
	}
	for i := range m.B1 {
		m.B1[i] = float32(r.NormFloat64() * 0.1)
	}
	for i := range m.W2 {
		m.W2[i] = float32(r.NormFloat64() * 0.5)
	}
	m.B2 = float32(r.NormFloat64() * 0.1)
	return m
}

// Eval computes the network in Go, in float32 like ONNX Runtime (results agree to ~1e-6).
func (m *MLP) Eval(x []float32) float32 {
	if m.Impute != nil {
		filled := make([]float32, len(x))
		for i, v := range x {
			if v != v { // NaN
				v = m.Impute[i]
			}
			filled[i] = v
		}
		x = filled
	}
	out := m.B2
	for h := range m.Hidden {
		s := m.B1[h]
		for i := range m.In {
			s += x[i] * m.W1[i*m.Hidden+h]
		}
		if s > 0 {
			out += s * m.W2[h]
		}
	}
	return float32(1 / (1 + math.Exp(-float64(out))))
}

// ONNX element types and the opset used.
const (
	elemFloat = 1
	irVersion = 8
	opset     = 13
)

// Model serializes the network as an ONNX ModelProto with input "features" [N, In] float and
// output "score" [N, 1] float.
func (m *MLP) Model() []byte {
	var g []byte
	node := func(op, name string, inputs []string, output string) {
		var n []byte
		for _, in := range inputs {
			n = protowire.AppendTag(n, 1, protowire.BytesType)
			n = protowire.AppendString(n, in)
		}
		n = protowire.AppendTag(n, 2, protowire.BytesType)
		n = protowire.AppendString(n, output)
		n = protowire.AppendTag(n, 3, protowire.BytesType)
		n = protowire.AppendString(n, name)
		n = protowire.AppendTag(n, 4, protowire.BytesType)
		n = protowire.AppendString(n, op)
		g = protowire.AppendTag(g, 1, protowire.BytesType) // GraphProto.node
		g = protowire.AppendBytes(g, n)
	}
	input := "features"
	if m.Impute != nil {
		node("IsNaN", "isnan", []string{"features"}, "missing")
		node("Where", "impute", []string{"missing", "Impute", "features"}, "filled")
		input = "filled"
	}
	node("MatMul", "mm1", []string{input, "W1"}, "h0")
	node("Add", "add1", []string{"h0", "B1"}, "h1")
	node("Relu", "relu", []string{"h1"}, "h2")
	node("MatMul", "mm2", []string{"h2", "W2"}, "o0")
	node("Add", "add2", []string{"o0", "B2"}, "o1")
	node("Sigmoid", "sigmoid", []string{"o1"}, "score")
	g = protowire.AppendTag(g, 2, protowire.BytesType) // GraphProto.name
	g = protowire.AppendString(g, "mlp")
	init := func(name string, dims []int64, data []float32) {
		var t []byte
		for _, d := range dims {
			t = protowire.AppendTag(t, 1, protowire.VarintType) // TensorProto.dims
			t = protowire.AppendVarint(t, uint64(d))
		}
		t = protowire.AppendTag(t, 2, protowire.VarintType) // data_type
		t = protowire.AppendVarint(t, elemFloat)
		t = protowire.AppendTag(t, 8, protowire.BytesType) // name
		t = protowire.AppendString(t, name)
		raw := make([]byte, 0, 4*len(data))
		for _, f := range data {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
		}
		t = protowire.AppendTag(t, 9, protowire.BytesType) // raw_data
		t = protowire.AppendBytes(t, raw)
		g = protowire.AppendTag(g, 5, protowire.BytesType) // GraphProto.initializer
		g = protowire.AppendBytes(g, t)
	}
	init("W1", []int64{int64(m.In), int64(m.Hidden)}, m.W1)
	init("B1", []int64{int64(m.Hidden)}, m.B1)
	init("W2", []int64{int64(m.Hidden), 1}, m.W2)
	init("B2", []int64{1}, []float32{m.B2})
	if m.Impute != nil {
		init("Impute", []int64{int64(m.In)}, m.Impute)
	}
	g = protowire.AppendTag(g, 11, protowire.BytesType) // GraphProto.input
	g = protowire.AppendBytes(g, valueInfo("features", "N", int64(m.In)))
	g = protowire.AppendTag(g, 12, protowire.BytesType) // GraphProto.output
	g = protowire.AppendBytes(g, valueInfo("score", "N", 1))

	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType) // ModelProto.ir_version
	b = protowire.AppendVarint(b, irVersion)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // producer_name
	b = protowire.AppendString(b, "quiver-onnxtest")
	b = protowire.AppendTag(b, 7, protowire.BytesType) // graph
	b = protowire.AppendBytes(b, g)
	var op []byte
	op = protowire.AppendTag(op, 1, protowire.BytesType) // OperatorSetIdProto.domain
	op = protowire.AppendString(op, "")
	op = protowire.AppendTag(op, 2, protowire.VarintType) // version
	op = protowire.AppendVarint(op, opset)
	b = protowire.AppendTag(b, 8, protowire.BytesType) // opset_import
	b = protowire.AppendBytes(b, op)
	return b
}

// valueInfo is a ValueInfoProto of a float tensor [batch, width] with a symbolic batch.
func valueInfo(name, batch string, width int64) []byte {
	dim := func(param string, value int64) []byte {
		var d []byte
		if param != "" {
			d = protowire.AppendTag(d, 2, protowire.BytesType) // dim_param
			d = protowire.AppendString(d, param)
		} else {
			d = protowire.AppendTag(d, 1, protowire.VarintType) // dim_value
			d = protowire.AppendVarint(d, uint64(value))
		}
		return d
	}
	var shape []byte
	shape = protowire.AppendTag(shape, 1, protowire.BytesType)
	shape = protowire.AppendBytes(shape, dim(batch, 0))
	shape = protowire.AppendTag(shape, 1, protowire.BytesType)
	shape = protowire.AppendBytes(shape, dim("", width))
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType) // elem_type
	tensor = protowire.AppendVarint(tensor, elemFloat)
	tensor = protowire.AppendTag(tensor, 2, protowire.BytesType) // shape
	tensor = protowire.AppendBytes(tensor, shape)
	var typ []byte
	typ = protowire.AppendTag(typ, 1, protowire.BytesType) // TypeProto.tensor_type
	typ = protowire.AppendBytes(typ, tensor)
	var vi []byte
	vi = protowire.AppendTag(vi, 1, protowire.BytesType) // name
	vi = protowire.AppendString(vi, name)
	vi = protowire.AppendTag(vi, 2, protowire.BytesType) // type
	vi = protowire.AppendBytes(vi, typ)
	return vi
}
