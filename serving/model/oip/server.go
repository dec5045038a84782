package oip

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/quiverfs/quiver/proto/inference"
	"github.com/quiverfs/quiver/serving/model"
)

// ServedModel is one model a Server serves.
type ServedModel struct {
	Name    string
	Version string // default "1"
	// Input is the name of the model's one input tensor, [batch, Width] FP32. Default "features".
	Input string
	// Width is the number of features per row, or -1 when any width is accepted.
	Width int64
	// Outputs names and types the outputs for ModelMetadata (optional).
	Outputs []string
	Model   model.Model
}

// Server serves model.Models over the Open Inference Protocol: ServerLive, ServerReady,
// ModelReady, ServerMetadata, ModelMetadata and ModelInfer. It does not close the models.
type Server struct {
	pb.UnimplementedGRPCInferenceServiceServer
	models map[string]ServedModel
	// MaxRows bounds the rows of one request. Default 65536.
	MaxRows int
}

// NewServer serves the given models, by name.
func NewServer(models ...ServedModel) *Server {
	s := &Server{models: map[string]ServedModel{}, MaxRows: 1 << 16}
	for _, m := range models {
		if m.Version == "" {
			m.Version = "1"
		}
		if m.Input == "" {
			m.Input = "features"
		}
		s.models[m.Name] = m
	}
	return s
}

// Register adds the service to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { pb.RegisterGRPCInferenceServiceServer(r, s) }

func (s *Server) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (s *Server) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: true}, nil
}

func (s *Server) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: "quiver-serve-model", Version: "1"}, nil
}

func (s *Server) lookup(name, version string) (ServedModel, error) {
	m, ok := s.models[name]
	if !ok {
		return ServedModel{}, status.Errorf(codes.NotFound, "unknown model %q", name)
	}
	if version != "" && version != m.Version {
		return ServedModel{}, status.Errorf(codes.NotFound, "model %q has no version %q (served: %q)", name, version, m.Version)
	}
	return m, nil
}

func (s *Server) ModelReady(_ context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	_, err := s.lookup(req.GetName(), req.GetVersion())
	return &pb.ModelReadyResponse{Ready: err == nil}, nil
}

func (s *Server) ModelMetadata(_ context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	m, err := s.lookup(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	md := &pb.ModelMetadataResponse{
		Name:     m.Name,
		Versions: []string{m.Version},
		Platform: "quiver",
		Inputs:   []*pb.ModelMetadataResponse_TensorMetadata{{Name: m.Input, Datatype: "FP32", Shape: []int64{-1, m.Width}}},
	}
	for _, o := range m.Outputs {
		md.Outputs = append(md.Outputs, &pb.ModelMetadataResponse_TensorMetadata{Name: o, Datatype: "FP32", Shape: []int64{-1, -1}})
	}
	return md, nil
}

// ModelInfer runs one request. Inputs are read from raw_input_contents or contents; outputs
// are returned as raw_output_contents.
func (s *Server) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	m, err := s.lookup(req.GetModelName(), req.GetModelVersion())
	if err != nil {
		return nil, err
	}
	if len(req.GetInputs()) != 1 {
		return nil, status.Errorf(codes.InvalidArgument, "model %q takes one input tensor %q, got %d", m.Name, m.Input, len(req.GetInputs()))
	}
	in := req.GetInputs()[0]
	if in.GetName() != m.Input {
		return nil, status.Errorf(codes.InvalidArgument, "model %q has no input %q (its input: %q)", m.Name, in.GetName(), m.Input)
	}
	shape := in.GetShape()
	if len(shape) != 2 || shape[0] <= 0 || shape[1] <= 0 || shape[0] > int64(s.MaxRows) || shape[1] > 1<<16 {
		return nil, status.Errorf(codes.InvalidArgument, "input %q has shape %v; want [rows ≤ %d, features]", in.GetName(), shape, s.MaxRows)
	}
	if m.Width > 0 && shape[1] != m.Width {
		return nil, status.Errorf(codes.InvalidArgument, "input %q has %d features per row; model %q takes %d", in.GetName(), shape[1], m.Name, m.Width)
	}
	rows, width := int(shape[0]), int(shape[1])
	data, err := inputData(in, req.GetRawInputContents(), rows*width)
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "input %q: %v", in.GetName(), err)
	}
	features := make([]string, width)
	for i := range features {
		features[i] = "f" + strconv.Itoa(i)
	}
	outs, err := m.Model.Predict(ctx, &model.Batch{Rows: rows, Features: features, Data: data})
	if err != nil {
		return nil, predictStatus(err)
	}
	resp := &pb.ModelInferResponse{ModelName: m.Name, ModelVersion: m.Version, Id: req.GetId()}
	for _, t := range outs {
		o, raw := encodeOutput(t)
		resp.Outputs = append(resp.Outputs, o)
		resp.RawOutputContents = append(resp.RawOutputContents, raw)
	}
	return resp, nil
}

func predictStatus(err error) error {
	switch {
	case errors.Is(err, model.ErrInvalidInput):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, model.ErrUnavailable), errors.Is(err, model.ErrClosed):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func inputData(in *pb.ModelInferRequest_InferInputTensor, raw [][]byte, n int) ([]float32, error) {
	out := make([]float32, n)
	switch {
	case len(raw) > 0:
		if len(raw) != 1 {
			return nil, fmt.Errorf("%d raw inputs for one input tensor", len(raw))
		}
		b := raw[0]
		switch in.GetDatatype() {
		case "FP32":
			if len(b) != 4*n {
				return nil, fmt.Errorf("%d bytes for %d FP32 values", len(b), n)
			}
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		case "FP64":
			if len(b) != 8*n {
				return nil, fmt.Errorf("%d bytes for %d FP64 values", len(b), n)
			}
			for i := range out {
				out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
			}
		default:
			return nil, fmt.Errorf("datatype %q; want FP32 or FP64", in.GetDatatype())
		}
	case in.GetDatatype() == "FP32":
		c := in.GetContents().GetFp32Contents()
		if len(c) != n {
			return nil, fmt.Errorf("%d values for shape %v", len(c), in.GetShape())
		}
		copy(out, c)
	case in.GetDatatype() == "FP64":
		c := in.GetContents().GetFp64Contents()
		if len(c) != n {
			return nil, fmt.Errorf("%d values for shape %v", len(c), in.GetShape())
		}
		for i, x := range c {
			out[i] = float32(x)
		}
	default:
		return nil, fmt.Errorf("datatype %q; want FP32 or FP64", in.GetDatatype())
	}
	return out, nil
}

func encodeOutput(t model.Tensor) (*pb.ModelInferResponse_InferOutputTensor, []byte) {
	o := &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Shape: t.Shape}
	var b []byte
	switch {
	case t.Float32 != nil:
		o.Datatype = "FP32"
		for _, x := range t.Float32 {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	case t.Float64 != nil:
		o.Datatype = "FP64"
		for _, x := range t.Float64 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
	case t.Int64 != nil:
		o.Datatype = "INT64"
		for _, x := range t.Int64 {
			b = binary.LittleEndian.AppendUint64(b, uint64(x))
		}
	case t.Int32 != nil:
		o.Datatype = "INT32"
		for _, x := range t.Int32 {
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		}
	case t.Bool != nil:
		o.Datatype = "BOOL"
		for _, x := range t.Bool {
			if x {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	}
	return o, b
}

// ListenAndServe serves models on addr (host:port) with gRPC health and reflection until ctx
// is done, then stops gracefully, giving in-flight calls up to 10s. It is `quiver serve-model`.
func ListenAndServe(ctx context.Context, addr string, log *slog.Logger, models ...ServedModel) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve-model: listen on %s: %w", addr, err)
	}
	return Serve(ctx, lis, log, models...)
}

// Serve is ListenAndServe on a listener; it closes lis.
func Serve(ctx context.Context, lis net.Listener, log *slog.Logger, models ...ServedModel) error {
	g := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	NewServer(models...).Register(g)
	h := health.NewServer()
	healthpb.RegisterHealthServer(g, h)
	reflection.Register(g)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	if log != nil {
		log.Info("serving models over the Open Inference Protocol", "addr", lis.Addr().String(), "models", len(models))
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		return fmt.Errorf("serve-model: %w", err)
	}
	h.Shutdown()
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		g.Stop()
		<-done
	}
	<-errc
	return nil
}
