package oip_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/quiverfs/quiver/serving/model"
	"github.com/quiverfs/quiver/serving/model/oip"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rowStats returns, per row, the sum (FP32) and the row's width as INT64 [rows, 2].
type rowStats struct{}

func (rowStats) Predict(ctx context.Context, in *model.Batch) ([]model.Tensor, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	w := len(in.Features)
	sum := model.Tensor{Name: "sum", Shape: []int64{int64(in.Rows), 1}, Float32: make([]float32, in.Rows)}
	ints := model.Tensor{Name: "width", Shape: []int64{int64(in.Rows), 2}, Int64: make([]int64, 2*in.Rows)}
	for r := range in.Rows {
		for _, x := range in.Data[r*w : (r+1)*w] {
			sum.Float32[r] += x
		}
		ints.Int64[2*r], ints.Int64[2*r+1] = int64(r), int64(w)
	}
	return []model.Tensor{sum, ints}, nil
}

func (rowStats) Close() error { return nil }

func start(t *testing.T, models ...oip.ServedModel) []grpc.DialOption {
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- oip.Serve(ctx, lis, nil, models...) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })}
}

func TestClientServer(t *testing.T) {
	dial := start(t, oip.ServedModel{Name: "stats", Width: 3, Model: rowStats{}})
	ctx := context.Background()
	c, err := oip.Dial(ctx, "passthrough:///bufnet", "stats", "", oip.Options{DialOptions: dial})
	require.NoError(t, err)
	defer c.Close()

	out, err := c.Predict(ctx, &model.Batch{Rows: 2, Features: []string{"a", "b", "c"}, Data: []float32{1, 2, 3, 4, 5, 6.5}})
	require.NoError(t, err)
	require.Len(t, out, 2)
	require.Equal(t, "sum", out[0].Name)
	require.Equal(t, []float32{6, 15.5}, out[0].Float32)
	require.Equal(t, []int64{2, 2}, out[1].Shape)
	require.Equal(t, []int64{0, 3, 1, 3}, out[1].Int64)

	_, err = c.Predict(ctx, &model.Batch{Rows: 1, Features: []string{"a", "b"}, Data: []float32{1, 2}})
	require.ErrorIs(t, err, model.ErrInvalidInput, "wrong width")

	missing, err := oip.Dial(ctx, "passthrough:///bufnet", "nope", "", oip.Options{DialOptions: dial})
	require.NoError(t, err)
	defer missing.Close()
	_, err = missing.Predict(ctx, &model.Batch{Rows: 1, Features: []string{"a"}, Data: []float32{1}})
	require.ErrorIs(t, err, model.ErrNotFound)
}

func TestServerDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	c, err := oip.Dial(context.Background(), addr, "stats", "", oip.Options{})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Predict(context.Background(), &model.Batch{Rows: 1, Features: []string{"a"}, Data: []float32{1}})
	require.ErrorIs(t, err, model.ErrUnavailable)
}
