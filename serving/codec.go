package serving

import (
	"fmt"
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// serverCodec is the server's protobuf codec (grpc.ForceServerCodecV2). It is grpc-go's
// codecV2 but for the buffer a response is marshalled into: grpc-go takes it from its default
// pool, which zeroes the whole buffer on every Get and has no size between 32 KiB and 1 MiB,
// so a 60 KB response (100 entities × 30 features) cleared 1 MiB per call — the largest single
// cost of that call in the profile (docs/BENCHMARKS.md). Marshalling writes every byte of the
// response, so the buffers here are not cleared, and come in every power of two.
//
// It also records the wire size of large requests (sizes; admission.go), which the gate
// reads instead of measuring the decoded message again.
type serverCodec struct {
	sizes *sizeTable // nil: sizes are not recorded
}

// poolingThreshold is the size under which a response is marshalled into a fresh slice, as
// grpc-go does (mem.IsBelowBufferPoolingThreshold).
const poolingThreshold = 1 << 10

func (serverCodec) Name() string { return "proto" }

func (serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	m := messageOf(v)
	if m == nil {
		return nil, fmt.Errorf("proto: failed to marshal, message is %T, want proto.Message", v)
	}
	if r, ok := v.(*pb.GetOnlineFeaturesResponse); ok {
		return marshalResponse(r)
	}
	// Size caches the sizes of the message tree; UseCachedSize reuses them.
	size := proto.Size(m)
	opts := proto.MarshalOptions{UseCachedSize: true}
	if size < poolingThreshold {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := responseBuffers.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err != nil || len(out) != size || &out[0] != &(*buf)[0] {
		responseBuffers.Put(buf)
		if err == nil {
			err = fmt.Errorf("proto: marshalled %d bytes of a %d-byte message", len(out), size)
		}
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, responseBuffers)}, nil
}

// marshalResponse is Marshal of a GetOnlineFeaturesResponse, by the marshaller of marshal.go.
func marshalResponse(r *pb.GetOnlineFeaturesResponse) (mem.BufferSlice, error) {
	var sizesBuf [64]int
	size, sizes := responseSize(r, sizesBuf[:0])
	buf := responseBuffers.Get(max(size, 1))
	out, err := appendResponse((*buf)[:0], r, sizes)
	if err != nil || len(out) != size || (size > 0 && &out[0] != &(*buf)[0]) {
		responseBuffers.Put(buf)
		if err == nil {
			err = fmt.Errorf("marshal GetOnlineFeaturesResponse: wrote %d bytes, sized %d", len(out), size)
		}
		return nil, err
	}
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, responseBuffers)}, nil
}

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m := messageOf(v)
	if m == nil {
		return fmt.Errorf("proto: failed to unmarshal, message is %T, want proto.Message", v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if err := proto.Unmarshal(buf.ReadOnlyData(), m); err != nil {
		return err
	}
	if n := buf.Len(); c.sizes != nil && n >= largeRequestBytes {
		c.sizes.record(v, n)
	}
	return nil
}

func messageOf(v any) proto.Message {
	switch m := v.(type) {
	case proto.Message:
		return m
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m)
	}
	return nil
}

// dirtyPool is a mem.BufferPool of buffers of every power of two from 1 KiB to 64 MiB (larger
// ones are not kept) that hands buffers out as they were left: for writers that overwrite
// every byte they send, as a marshaller does.
type dirtyPool struct {
	classes [maxClass + 1]sync.Pool
}

const (
	minClass = 10 // 1 KiB
	maxClass = 26 // 64 MiB
)

var responseBuffers = &dirtyPool{}

func sizeClass(n int) int {
	c := bits.Len(uint(n - 1))
	return max(c, minClass)
}

// Get returns a buffer of length n, not cleared.
func (p *dirtyPool) Get(n int) *[]byte {
	c := sizeClass(n)
	if c > maxClass {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// Put keeps buf for a later Get when its capacity is one of the pool's sizes.
func (p *dirtyPool) Put(buf *[]byte) {
	c := cap(*buf)
	if c < 1<<minClass || c > 1<<maxClass || c&(c-1) != 0 {
		return
	}
	*buf = (*buf)[:0]
	p.classes[bits.Len(uint(c))-1].Put(buf)
}
