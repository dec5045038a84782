package serving

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// Request size and admission, the same on both transports: one limit on a request's size
// (Options.MaxRecvMsgBytes: a gRPC message, an HTTP/JSON body), and one gate that bounds the
// bytes of large requests (largeRequestBytes or more) being decoded and served at once
// (Options.MaxInflightRequestBytes). A decoded request takes several times its size, so without
// the gate N concurrent large bodies take N times that. A large request that finds no room
// waits, within its deadline, and is refused with RESOURCE_EXHAUSTED when the deadline passes
// first; small requests, the hot path, never touch the gate.
//
// Where the gate sits: over HTTP before the body is read (by its Content-Length, or the limit
// when the body is chunked); over gRPC the transport has read the message before any
// interceptor runs, so the gate bounds its conversion and serving, by the wire size the codec
// recorded (sizeTable): measuring every message again (proto.Size) would cost each small call
// more than the gate is worth to it.

// largeRequestBytes: requests of at least this size pass the gate.
const largeRequestBytes = 64 << 10

// gate admits large requests while the bytes of those admitted stay within its capacity.
type gate struct {
	sem      *semaphore.Weighted
	capacity int64
	inFlight prometheus.Gauge
	waiting  prometheus.Gauge
}

func newGate(capacity int64, m *metrics) *gate {
	return &gate{sem: semaphore.NewWeighted(capacity), capacity: capacity, inFlight: m.largeBytes, waiting: m.largeWaiting}
}

// admit waits, within ctx, until a request of n bytes fits, and returns the function that
// makes its room again. Requests under largeRequestBytes are admitted at once (release is a
// no-op). A request that finds no room before ctx's deadline is ErrTooLarge.
func (g *gate) admit(ctx context.Context, n int64) (release func(), err error) {
	if n < largeRequestBytes {
		return func() {}, nil
	}
	w := min(n, g.capacity)
	if !g.sem.TryAcquire(w) {
		g.waiting.Inc()
		err := g.sem.Acquire(ctx, w)
		g.waiting.Dec()
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err()
			}
			return nil, tagf(ErrTooLarge, "server busy: a request of %d bytes waited for room until its deadline; large requests (%d bytes or more) are served %d bytes at a time (--max-inflight-request-bytes); retry later", n, largeRequestBytes, g.capacity)
		}
	}
	g.inFlight.Add(float64(w))
	return func() {
		g.inFlight.Sub(float64(w))
		g.sem.Release(w)
	}, nil
}

// bodyLimit is an HTTP request body cut at the size limit (http.MaxBytesReader) that
// remembers hitting it, so the error handler can answer 413 whatever the decoder made of it.
type bodyLimit struct {
	r        io.Reader // the body (its first bytes again, once peeked)
	c        io.Closer
	exceeded bool
}

func newBodyLimit(w http.ResponseWriter, body io.ReadCloser, limit int) *bodyLimit {
	m := http.MaxBytesReader(w, body, int64(limit))
	return &bodyLimit{r: m, c: m}
}

func (b *bodyLimit) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.exceeded = true
	}
	return n, err
}

func (b *bodyLimit) Close() error { return b.c.Close() }

// sizeUnknown is the size the gate counts for a body of unknown length (chunked): it reads
// up to largeRequestBytes of it, and a body that ends there is small (0, nothing to wait
// for); a longer one counts as limit bytes, the most it may be. What was read is read again.
func (b *bodyLimit) sizeUnknown(limit int) (int64, error) {
	head, err := io.ReadAll(io.LimitReader(b, largeRequestBytes))
	if err != nil {
		return 0, err
	}
	b.r = io.MultiReader(bytes.NewReader(head), b.r)
	if len(head) < largeRequestBytes {
		return int64(len(head)), nil
	}
	return int64(limit), nil
}

// bodyTooLarge is the message of a body over limit bytes; n < 0 when its size is unknown.
func bodyTooLarge(n int64, limit int) string {
	if n < 0 {
		return fmt.Sprintf("request body is larger than the limit of %d bytes (--max-recv-bytes)", limit)
	}
	return fmt.Sprintf("request body of %d bytes is larger than the limit of %d bytes (--max-recv-bytes)", n, limit)
}

// deadlinePassed reports whether ctx's deadline has passed (its Done may not have fired yet
// when a read deadline at the same instant did).
func deadlinePassed(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// sizeTable hands the wire size of large unary requests from the codec, which sees the bytes,
// to the interceptors, which see the decoded message: keyed by the message pointer, an entry
// per large request in flight between its decoding and its first interceptor, which takes it.
// Only the FeatureServing requests are recorded: every unary request decoded reaches the
// interceptors, so no entry is left behind.
type sizeTable struct{ m sync.Map }

func (t *sizeTable) record(v any, n int) {
	switch v.(type) {
	case *pb.GetOnlineFeaturesRequest, *pb.PredictRequest, *pb.PushFeaturesRequest:
		t.m.Store(v, n)
	}
}

// take returns and forgets the recorded size of v; ok is false for a request under
// largeRequestBytes.
func (t *sizeTable) take(v any) (n int, ok bool) {
	x, ok := t.m.LoadAndDelete(v)
	if !ok {
		return 0, false
	}
	return x.(int), true
}

// requestSizeKey is the context key of a large gRPC request's wire size.
type requestSizeKey struct{}
