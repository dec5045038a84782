// Package oip speaks the Open Inference Protocol (KServe v2 gRPC,
// inference.GRPCInferenceService): a model.Model client for remote model servers (Triton,
// KServe, MLServer, or `quiver serve-model`), and a small server that serves model.Models,
// which is what `quiver serve-model` runs.
package oip

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/inference"
	"github.com/quiverfs/quiver/serving/model"
)

// Options configure a client. The zero Options are valid.
type Options struct {
	// TLS, when set, makes the client use TLS with this configuration; default plaintext.
	TLS *tls.Config
	// MetadataTimeout bounds the ModelMetadata call that learns the model's input. Default 5s.
	MetadataTimeout time.Duration
	// DialOptions are appended to the client's (tests pass a bufconn dialer here).
	DialOptions []grpc.DialOption
}

// Client runs a model on a remote OIP server. It implements model.Model.
type Client struct {
	conn    *grpc.ClientConn
	api     pb.GRPCInferenceServiceClient
	name    string
	version string
	opts    Options

	mu       sync.Mutex
	input    string // the model's input tensor name, learned from ModelMetadata
	datatype string // FP32 or FP64
}

var _ model.Model = (*Client)(nil)

// Dial makes a client for model name (version: "" for the server's default) at endpoint
// (host:port). It does not connect until the first prediction.
func Dial(ctx context.Context, endpoint, name, version string, opts Options) (*Client, error) {
	if opts.MetadataTimeout <= 0 {
		opts.MetadataTimeout = 5 * time.Second
	}
	creds := insecure.NewCredentials()
	if opts.TLS != nil {
		creds = credentials.NewTLS(opts.TLS)
	}
	dopts := append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, opts.DialOptions...)
	conn, err := grpc.NewClient(endpoint, dopts...)
	if err != nil {
		return nil, fmt.Errorf("oip model %q at %s: %w", name, endpoint, err)
	}
	return &Client{conn: conn, api: pb.NewGRPCInferenceServiceClient(conn), name: name, version: version, opts: opts}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// remoteErr translates a remote status into the model package's sentinels.
func (c *Client) remoteErr(op string, err error) error {
	st, _ := status.FromError(err)
	msg := fmt.Sprintf("oip model %q at %s: %s: %s", c.name, c.conn.Target(), op, st.Message())
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return fmt.Errorf("%s: %w", msg, model.ErrUnavailable)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: %w", msg, context.DeadlineExceeded)
	case codes.Canceled:
		return fmt.Errorf("%s: %w", msg, context.Canceled)
	case codes.NotFound:
		return fmt.Errorf("%s: %w", msg, model.ErrNotFound)
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return fmt.Errorf("%s: %w", msg, model.ErrInvalidInput)
	}
	return errors.New(msg)
}

func (c *Client) metadata(ctx context.Context) (string, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.input != "" {
		return c.input, c.datatype, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.MetadataTimeout)
	defer cancel()
	md, err := c.api.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: c.name, Version: c.version})
	if err != nil {
		return "", "", c.remoteErr("model metadata", err)
	}
	if len(md.GetInputs()) != 1 {
		return "", "", fmt.Errorf("oip model %q: want one input tensor, the server lists %d: %w", c.name, len(md.GetInputs()), model.ErrInvalidInput)
	}
	in := md.GetInputs()[0]
	dt := in.GetDatatype()
	if dt != "FP32" && dt != "FP64" {
		return "", "", fmt.Errorf("oip model %q: input %q is %s; want FP32 or FP64: %w", c.name, in.GetName(), dt, model.ErrInvalidInput)
	}
	c.input, c.datatype = in.GetName(), dt
	return c.input, c.datatype, nil
}

// Predict implements model.Model with one ModelInfer call (inputs as raw little-endian bytes).
func (c *Client) Predict(ctx context.Context, in *model.Batch) ([]model.Tensor, error) {
	if err := in.Check(); err != nil {
		return nil, err
	}
	input, dt, err := c.metadata(ctx)
	if err != nil {
		return nil, err
	}
	var raw []byte
	if dt == "FP64" {
		raw = make([]byte, 0, 8*len(in.Data))
		for _, x := range in.Data {
			raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(float64(x)))
		}
	} else {
		raw = make([]byte, 0, 4*len(in.Data))
		for _, x := range in.Data {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
		}
	}
	resp, err := c.api.ModelInfer(ctx, &pb.ModelInferRequest{
		ModelName:        c.name,
		ModelVersion:     c.version,
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: input, Datatype: dt, Shape: []int64{int64(in.Rows), int64(len(in.Features))}}},
		RawInputContents: [][]byte{raw},
	})
	if err != nil {
		return nil, c.remoteErr("infer", err)
	}
	return decodeOutputs(resp)
}

func decodeOutputs(resp *pb.ModelInferResponse) ([]model.Tensor, error) {
	raw := resp.GetRawOutputContents()
	if len(raw) > 0 && len(raw) != len(resp.GetOutputs()) {
		return nil, fmt.Errorf("oip: %d raw outputs for %d output tensors: %w", len(raw), len(resp.GetOutputs()), model.ErrInvalidInput)
	}
	out := make([]model.Tensor, len(resp.GetOutputs()))
	for i, o := range resp.GetOutputs() {
		n := int64(1)
		for _, d := range o.GetShape() {
			if d < 0 || (d > 0 && n > math.MaxInt32/d) {
				return nil, fmt.Errorf("oip: output %q has a bad shape %v: %w", o.GetName(), o.GetShape(), model.ErrInvalidInput)
			}
			n *= d
		}
		t := model.Tensor{Name: o.GetName(), Shape: o.GetShape()}
		var b []byte
		if len(raw) > 0 {
			b = raw[i]
		}
		cont := o.GetContents()
		size := map[string]int64{"FP32": 4, "FP64": 8, "INT64": 8, "INT32": 4, "BOOL": 1}[o.GetDatatype()]
		if size == 0 {
			return nil, fmt.Errorf("oip: output %q has unsupported datatype %q: %w", o.GetName(), o.GetDatatype(), model.ErrInvalidInput)
		}
		if len(raw) > 0 && int64(len(b)) != n*size {
			return nil, fmt.Errorf("oip: output %q holds %d bytes for shape %v: %w", o.GetName(), len(b), o.GetShape(), model.ErrInvalidInput)
		}
		if len(raw) == 0 && int64(contentsLen(cont, o.GetDatatype())) != n {
			return nil, fmt.Errorf("oip: output %q holds %d values for shape %v: %w", o.GetName(), contentsLen(cont, o.GetDatatype()), o.GetShape(), model.ErrInvalidInput)
		}
		switch o.GetDatatype() {
		case "FP32":
			t.Float32 = make([]float32, n)
			for j := range t.Float32 {
				if b != nil {
					t.Float32[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
				} else if j < len(cont.GetFp32Contents()) {
					t.Float32[j] = cont.GetFp32Contents()[j]
				}
			}
		case "FP64":
			t.Float64 = make([]float64, n)
			for j := range t.Float64 {
				if b != nil {
					t.Float64[j] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*j:]))
				} else if j < len(cont.GetFp64Contents()) {
					t.Float64[j] = cont.GetFp64Contents()[j]
				}
			}
		case "INT64":
			t.Int64 = make([]int64, n)
			for j := range t.Int64 {
				if b != nil {
					t.Int64[j] = int64(binary.LittleEndian.Uint64(b[8*j:]))
				} else if j < len(cont.GetInt64Contents()) {
					t.Int64[j] = cont.GetInt64Contents()[j]
				}
			}
		case "INT32":
			t.Int32 = make([]int32, n)
			for j := range t.Int32 {
				if b != nil {
					t.Int32[j] = int32(binary.LittleEndian.Uint32(b[4*j:]))
				} else if j < len(cont.GetIntContents()) {
					t.Int32[j] = cont.GetIntContents()[j]
				}
			}
		case "BOOL":
			t.Bool = make([]bool, n)
			for j := range t.Bool {
				if b != nil {
					t.Bool[j] = b[j] != 0
				} else if j < len(cont.GetBoolContents()) {
					t.Bool[j] = cont.GetBoolContents()[j]
				}
			}
		}
		out[i] = t
	}
	return out, nil
}

func contentsLen(c *pb.InferTensorContents, datatype string) int {
	switch datatype {
	case "FP32":
		return len(c.GetFp32Contents())
	case "FP64":
		return len(c.GetFp64Contents())
	case "INT64":
		return len(c.GetInt64Contents())
	case "INT32":
		return len(c.GetIntContents())
	case "BOOL":
		return len(c.GetBoolContents())
	}
	return 0
}
