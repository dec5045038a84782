//go:build cgo

package onnx_test

import (
	"context"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/serving/model"
	"github.com/quiverfs/quiver/serving/model/onnx"
	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// libPath returns the ONNX Runtime library of scripts/onnxruntime.sh, or skips the test.
func libPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("QUIVER_ONNXRUNTIME_LIB")
	if p == "" {
		t.Skip("QUIVER_ONNXRUNTIME_LIB is not set; run: export QUIVER_ONNXRUNTIME_LIB=$(scripts/onnxruntime.sh)")
	}
	return p
}

func TestMLPMatchesGo(t *testing.T) {
	lib := libPath(t)
	mlp := onnxtest.NewMLP(5, 16, 42)
	m, err := onnx.OpenBytes("mlp", mlp.Model(), onnx.Options{LibraryPath: lib, Sessions: 2})
	require.NoError(t, err)
	defer m.Close()
	require.EqualValues(t, 5, m.Inputs())

	rows := 7
	in := &model.Batch{Rows: rows, Features: []string{"a", "b", "c", "d", "e"}, Data: make([]float32, rows*5)}
	for i := range in.Data {
		in.Data[i] = float32(i%11) - 4.5
	}
	var wg sync.WaitGroup
	for range 8 { // concurrent use of the pool
		wg.Go(func() {
			out, err := m.Predict(context.Background(), in)
			require.NoError(t, err)
			require.Len(t, out, 1)
			require.Equal(t, "score", out[0].Name)
			require.Equal(t, []int64{int64(rows), 1}, out[0].Shape)
			for r := range rows {
				require.InDelta(t, mlp.Eval(in.Data[r*5:(r+1)*5]), out[0].Float32[r], 1e-5)
			}
		})
	}
	wg.Wait()
}

// TestMLPImputesMissingInputs: a model built with Impute replaces NaN inputs (missing
// features) inside the graph, matching the Go evaluation.
func TestMLPImputesMissingInputs(t *testing.T) {
	lib := libPath(t)
	mlp := onnxtest.NewMLP(3, 4, 7)
	mlp.Impute = []float32{1.5, -2, 0.25}
	m, err := onnx.OpenBytes("mlp", mlp.Model(), onnx.Options{LibraryPath: lib, Sessions: 1})
	require.NoError(t, err)
	defer m.Close()
	nan := float32(math.NaN())
	in := &model.Batch{Rows: 2, Features: []string{"a", "b", "c"}, Data: []float32{nan, 3, nan, 0.5, nan, 2}}
	out, err := m.Predict(context.Background(), in)
	require.NoError(t, err)
	for r := range 2 {
		want := mlp.Eval(in.Data[r*3 : (r+1)*3])
		require.False(t, math.IsNaN(float64(want)))
		require.InDelta(t, want, out[0].Float32[r], 1e-5)
	}
	filled := []float32{1.5, 3, 0.25}
	require.InDelta(t, mlp.Eval(filled), out[0].Float32[0], 1e-5, "NaN replaced by the imputed value")
}

func TestWrongWidth(t *testing.T) {
	lib := libPath(t)
	m, err := onnx.OpenBytes("mlp", onnxtest.NewMLP(3, 4, 1).Model(), onnx.Options{LibraryPath: lib, Sessions: 1})
	require.NoError(t, err)
	defer m.Close()
	_, err = m.Predict(context.Background(), &model.Batch{Rows: 1, Features: []string{"a", "b"}, Data: []float32{1, 2}})
	require.ErrorIs(t, err, model.ErrInvalidInput)
	_, err = m.Predict(context.Background(), &model.Batch{Rows: 1, Features: []string{"a", "b", "c"}, Data: []float32{1, float32(math.NaN()), 3}})
	require.NoError(t, err)
	require.NoError(t, m.Close())
	_, err = m.Predict(context.Background(), &model.Batch{Rows: 1, Features: []string{"a", "b", "c"}, Data: []float32{1, 2, 3}})
	require.ErrorIs(t, err, model.ErrClosed)
}

func TestBadLibrary(t *testing.T) {
	if os.Getenv("QUIVER_ONNXRUNTIME_LIB") != "" {
		// ONNX Runtime is loaded once per process, and the other tests load the real library:
		// check the bad path in a fresh process of this test binary, without it.
		cmd := exec.Command(os.Args[0], "-test.run", "^TestBadLibrary$", "-test.v")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "QUIVER_ONNXRUNTIME_LIB=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
		require.Contains(t, string(out), "--- PASS: TestBadLibrary")
		return
	}
	_, err := onnx.OpenBytes("mlp", onnxtest.NewMLP(3, 4, 1).Model(), onnx.Options{LibraryPath: "/nonexistent/libonnxruntime.so"})
	require.ErrorIs(t, err, model.ErrUnavailable)
}

// TestReusedTensorsFollowTheBatch: sessions keep their tensors between calls of the same
// number of rows; calls of changing sizes (1, 3, 1, over the kept limit, ...), concurrent on a
// small pool, must each get their own rows' scores, never a stale or a neighbour's.
func TestReusedTensorsFollowTheBatch(t *testing.T) {
	lib := libPath(t)
	mlp := onnxtest.NewMLP(4, 8, 7)
	m, err := onnx.OpenBytes("mlp", mlp.Model(), onnx.Options{LibraryPath: lib, Sessions: 2})
	require.NoError(t, err)
	defer m.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i, rows := range []int{1, 1, 3, 1, 100, 1, 2, 2, 65, 64, 1} {
				in := &model.Batch{Rows: rows, Features: []string{"a", "b", "c", "d"}, Data: make([]float32, rows*4)}
				for j := range in.Data {
					in.Data[j] = float32((j+g*7+i*3)%13) - 6
				}
				out, err := m.Predict(context.Background(), in)
				require.NoError(t, err)
				require.Equal(t, []int64{int64(rows), 1}, out[0].Shape)
				require.Len(t, out[0].Float32, rows)
				for r := range rows {
					require.InDelta(t, mlp.Eval(in.Data[r*4:(r+1)*4]), out[0].Float32[r], 1e-5, "rows %d row %d", rows, r)
				}
			}
		})
	}
	wg.Wait()
}
