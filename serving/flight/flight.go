// Package flight is Quiver's Arrow Flight service: training datasets read and built over
// Flight, on the gRPC port of quiver serve (a second service on the same grpc.Server, behind
// the same TLS, authentication and limits).
//
//	GetFlightInfo  descriptor PATH [NAME] or [NAME, VERSION] (VERSION "3" or "v3"; none: the
//	               latest) → the dataset's schema, its rows and bytes, and one endpoint per
//	               Parquet part of its snapshot, so a client reads the parts in parallel
//	DoGet          a ticket of GetFlightInfo → that part's record batches, streamed from the
//	               Parquet file as it is read (never the whole part in memory)
//	DoPut          descriptor CMD {"create_dataset": {...}} (CreateRequest's JSON) with the
//	               entity rows as record batches → one PutResult whose app_metadata is the
//	               dataset built (or reused), as quiver dataset create builds it
//
// Tickets are stateless: they name the project, dataset, version, content id and part index,
// never a path. DoGet resolves them against the registry again (Datasets), so any replica
// behind a load balancer serves any ticket, a client cannot name a file it was not given, and
// a ticket of a version that was removed, or whose content changed, is NOT_FOUND.
//
// Authorization: the interceptors authenticate each call (auth.Options.HandlerAuthorized names
// this service) and each handler authorizes what it reads once it knows it: a datasets grant
// on the dataset to read it, and to build it, a datasets grant on its name and a grant on the
// feature service whose features it joins (docs/security.md).
package flight

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	flightpb "github.com/apache/arrow-go/v18/arrow/flight/gen/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/serving"
	"github.com/quiverfs/quiver/serving/auth"
)

// ServicePrefix is the prefix of the Flight service's full gRPC method names.
const ServicePrefix = "/arrow.flight.protocol.FlightService/"

// Full method names, as the guard logs them.
const (
	MethodGetFlightInfo = ServicePrefix + "GetFlightInfo"
	MethodDoGet         = ServicePrefix + "DoGet"
	MethodDoPut         = ServicePrefix + "DoPut"
)

// ActionCreateDataset is the key of a DoPut command that builds a dataset.
const ActionCreateDataset = "create_dataset"

// DefaultBatchRows is the most rows of one record batch DoGet sends.
const DefaultBatchRows = 64 << 10

// DefaultMaxBatchBytes is about the most bytes of one record batch DoGet sends: a batch of
// wider rows (arrays, long strings) is cut in slices, so that no message comes near the
// server's --max-send-bytes (64 MiB by default).
const DefaultMaxBatchBytes = 16 << 20

// Errors of the service. They carry error kinds (internal/errkind) that serving.StatusOf maps.
var (
	// ErrInvalidRequest: a descriptor, ticket or command that cannot be read.
	ErrInvalidRequest = errkind.New(errkind.Invalid, "invalid flight request")
	// ErrNotFound: a dataset version (or a ticket's part) that is not registered.
	ErrNotFound = errkind.New(errkind.NotFound, "not found")
)

// Datasets is how the service finds and builds datasets (package project implements it over
// the registry and package training).
type Datasets interface {
	// Dataset returns the registered version of dataset name (version 0: the latest). A name
	// or version that is not registered, or was removed, is an error of kind NotFound.
	Dataset(ctx context.Context, name string, version int) (Dataset, error)
	// Create builds (or reuses) a version of req.Name from the entity rows in the Parquet file
	// req.Entities, as quiver dataset create does.
	Create(ctx context.Context, req CreateRequest) (Created, error)
}

// Dataset is a registered dataset version and its snapshot's Parquet parts.
type Dataset struct {
	Name      string
	Version   int
	ContentID string
	Rows      int64
	// Dir is the snapshot's directory; each Part's Path is relative to it.
	Dir   string
	Parts []Part
}

// Part is one Parquet file of a dataset snapshot.
type Part struct {
	Path  string
	Rows  int64
	Bytes int64
}

// CreateRequest asks for a dataset version; it is the JSON of a DoPut command's
// create_dataset key.
type CreateRequest struct {
	Name           string `json:"name"`
	FeatureService string `json:"feature_service"`
	// At pins the offline tables (RFC 3339); empty: their latest snapshots.
	At            string `json:"at,omitempty"`
	CreatedCutoff bool   `json:"created_cutoff,omitempty"`
	Rebuild       bool   `json:"rebuild,omitempty"`
	// Entities is the Parquet file of the uploaded entity rows; set by the service.
	Entities string `json:"-"`
}

// Created is a dataset version built, or reused (Reused) because one of the same name was
// built from the same inputs.
type Created struct {
	Dataset
	Reused bool
}

// Options configure a Service. Project and Datasets are required.
type Options struct {
	Project  string
	Datasets Datasets
	// Auth authorizes each call (nil: every caller may read and build every dataset).
	Auth *auth.Guard
	// TempDir holds uploaded entity rows while a dataset is built. Default: os.TempDir().
	TempDir string
	// Logger receives internal errors. Default: discard.
	Logger *slog.Logger
	// BatchRows bounds the rows of one record batch of DoGet. Default DefaultBatchRows.
	BatchRows int
	// MaxBatchBytes bounds (about) the bytes of one record batch of DoGet. Default
	// DefaultMaxBatchBytes.
	MaxBatchBytes int64
	// Registerer receives the service's metrics. Default: a new private registry.
	Registerer prometheus.Registerer
}

// Service serves Arrow Flight. Register it on a gRPC server with Register.
type Service struct {
	flight.BaseFlightServer
	opts     Options
	mem      memory.Allocator
	calls    *prometheus.CounterVec // method, code
	rowsSent prometheus.Counter
	bytes    prometheus.Counter // record batch bytes sent by DoGet
}

// New builds the service.
func New(opts Options) (*Service, error) {
	switch {
	case opts.Project == "":
		return nil, errors.New("flight: a project is required")
	case opts.Datasets == nil:
		return nil, errors.New("flight: datasets are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.BatchRows <= 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	s := &Service{opts: opts, mem: memory.DefaultAllocator,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "flight", Name: "calls_total",
			Help: "Arrow Flight calls (datasets), by method and gRPC status code.",
		}, []string{"method", "code"}),
		rowsSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "flight", Name: "rows_sent_total",
			Help: "Dataset rows sent by DoGet.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "flight", Name: "batch_bytes_sent_total",
			Help: "Bytes of the Arrow record batches sent by DoGet (before IPC framing).",
		}),
	}
	for _, c := range []prometheus.Collector{s.calls, s.rowsSent, s.bytes} {
		if err := opts.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("flight: register metrics: %w", err)
		}
	}
	return s, nil
}

// count records a call's outcome; it returns err.
func (s *Service) count(method string, err error) error {
	s.calls.WithLabelValues(strings.TrimPrefix(method, ServicePrefix), status.Code(err).String()).Inc()
	return err
}

// Register registers the service on r (serving.Options.Services).
func (s *Service) Register(r grpc.ServiceRegistrar) {
	flightpb.RegisterFlightServiceServer(r, s)
}

// ticket is the content of a Flight ticket: what a part is, never where.
type ticket struct {
	Project   string `json:"project"`
	Dataset   string `json:"dataset"`
	Version   int    `json:"version"`
	ContentID string `json:"content_id"`
	Part      int    `json:"part"`
}

// InfoMetadata is the app_metadata of GetFlightInfo's answer.
type InfoMetadata struct {
	Name      string `json:"name"`
	Version   int    `json:"version"`
	ContentID string `json:"content_id"`
	Rows      int64  `json:"rows"`
}

// PutMetadata is the app_metadata of DoPut's PutResult: the dataset built.
type PutMetadata struct {
	InfoMetadata
	Parts  int  `json:"parts"`
	Reused bool `json:"reused"`
}

// GetFlightInfo describes a dataset version: its schema and one endpoint per part.
func (s *Service) GetFlightInfo(ctx context.Context, desc *flight.FlightDescriptor) (_ *flight.FlightInfo, err error) {
	defer func() { _ = s.count(MethodGetFlightInfo, err) }()
	defer s.recover(ctx, MethodGetFlightInfo, &err)
	name, version, err := parsePath(desc)
	if err != nil {
		return nil, s.status(ctx, MethodGetFlightInfo, err)
	}
	if err := s.authorize(ctx, MethodGetFlightInfo, auth.Resource{Kind: auth.KindDataset, Project: s.opts.Project, Name: name}); err != nil {
		return nil, err
	}
	ds, err := s.opts.Datasets.Dataset(ctx, name, version)
	if err != nil {
		return nil, s.status(ctx, MethodGetFlightInfo, err)
	}
	if len(ds.Parts) == 0 {
		return nil, s.status(ctx, MethodGetFlightInfo, fmt.Errorf("dataset %s@v%d lists no Parquet parts", ds.Name, ds.Version))
	}
	schema, err := partSchema(filepath.Join(ds.Dir, filepath.FromSlash(ds.Parts[0].Path)), s.mem)
	if err != nil {
		return nil, s.status(ctx, MethodGetFlightInfo, fmt.Errorf("dataset %s@v%d: %w", ds.Name, ds.Version, err))
	}
	info := &flight.FlightInfo{
		Schema:           flight.SerializeSchema(schema, s.mem),
		FlightDescriptor: desc,
		TotalRecords:     ds.Rows,
		Ordered:          true,
	}
	for i, p := range ds.Parts {
		t, _ := json.Marshal(ticket{Project: s.opts.Project, Dataset: ds.Name, Version: ds.Version, ContentID: ds.ContentID, Part: i})
		info.Endpoint = append(info.Endpoint, &flight.FlightEndpoint{Ticket: &flight.Ticket{Ticket: t}})
		info.TotalBytes += p.Bytes
	}
	info.AppMetadata, _ = json.Marshal(InfoMetadata{Name: ds.Name, Version: ds.Version, ContentID: ds.ContentID, Rows: ds.Rows})
	return info, nil
}

// DoGet streams one part of a dataset version, named by a ticket of GetFlightInfo.
func (s *Service) DoGet(tkt *flight.Ticket, stream flight.FlightService_DoGetServer) (err error) {
	ctx := stream.Context()
	defer func() { _ = s.count(MethodDoGet, err) }()
	defer s.recover(ctx, MethodDoGet, &err)
	var t ticket
	dec := json.NewDecoder(strings.NewReader(string(tkt.GetTicket())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil || t.Dataset == "" || t.Version < 1 || t.Part < 0 {
		return s.status(ctx, MethodDoGet, fmt.Errorf("%w: the ticket is not one GetFlightInfo gave (want a ticket of one of its endpoints)", ErrInvalidRequest))
	}
	if t.Project != s.opts.Project {
		return s.status(ctx, MethodDoGet, fmt.Errorf("%w: the ticket is of project %q; this server serves %q", ErrNotFound, t.Project, s.opts.Project))
	}
	if err := s.authorize(ctx, MethodDoGet, auth.Resource{Kind: auth.KindDataset, Project: s.opts.Project, Name: t.Dataset}); err != nil {
		return err
	}
	ds, err := s.opts.Datasets.Dataset(ctx, t.Dataset, t.Version)
	if err != nil {
		return s.status(ctx, MethodDoGet, err)
	}
	if ds.ContentID != t.ContentID || t.Part >= len(ds.Parts) {
		return s.status(ctx, MethodDoGet, fmt.Errorf("%w: dataset %s@v%d has no part %d of content %s (ask GetFlightInfo again)", ErrNotFound, t.Dataset, t.Version, t.Part, t.ContentID))
	}
	path := filepath.Join(ds.Dir, filepath.FromSlash(ds.Parts[t.Part].Path))
	if err := s.streamPart(ctx, path, stream); err != nil {
		return s.status(ctx, MethodDoGet, fmt.Errorf("dataset %s@v%d part %d: %w", t.Dataset, t.Version, t.Part, err))
	}
	return nil
}

// streamPart sends the record batches of the Parquet file at path as they are read.
func (s *Service) streamPart(ctx context.Context, path string, stream flight.DataStreamWriter) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(s.opts.BatchRows)}, s.mem)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	defer rr.Release()
	w := flight.NewRecordWriter(stream, ipc.WithSchema(rr.Schema()), ipc.WithAllocator(s.mem))
	defer w.Close()
	for rr.Next() {
		rec := rr.RecordBatch()
		n, err := writeBounded(w, rec, s.opts.MaxBatchBytes)
		if err != nil {
			return err
		}
		s.rowsSent.Add(float64(rec.NumRows()))
		s.bytes.Add(float64(n))
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return nil
}

// writeBounded writes rec in slices of about maxBytes at most (rows taken as equally wide);
// it returns rec's bytes.
func writeBounded(w *flight.Writer, rec arrow.RecordBatch, maxBytes int64) (int64, error) {
	size, rows := int64(0), rec.NumRows()
	for _, c := range rec.Columns() {
		size += dataBytes(c.Data())
	}
	if size <= maxBytes || rows <= 1 {
		return size, w.Write(rec)
	}
	pieces := (size + maxBytes - 1) / maxBytes
	step := max(1, (rows+pieces-1)/pieces)
	for off := int64(0); off < rows; off += step {
		part := rec.NewSlice(off, min(off+step, rows))
		err := w.Write(part)
		part.Release()
		if err != nil {
			return size, err
		}
	}
	return size, nil
}

// dataBytes is the bytes of an array's buffers, its children's included.
func dataBytes(d arrow.ArrayData) int64 {
	n := int64(0)
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}

// DoPut builds a dataset from the entity rows sent, as its descriptor's command asks.
func (s *Service) DoPut(stream flight.FlightService_DoPutServer) (err error) {
	ctx := stream.Context()
	defer func() { _ = s.count(MethodDoPut, err) }()
	defer s.recover(ctx, MethodDoPut, &err)
	rr, err := flight.NewRecordReader(stream, ipc.WithAllocator(s.mem))
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: DoPut sent no schema: send the entity rows as record batches", ErrInvalidRequest)
		}
		return s.status(ctx, MethodDoPut, err)
	}
	defer rr.Release()
	req, err := parseCommand(rr.LatestFlightDescriptor())
	if err != nil {
		return s.status(ctx, MethodDoPut, err)
	}
	if err := s.authorize(ctx, MethodDoPut,
		auth.Resource{Kind: auth.KindDataset, Project: s.opts.Project, Name: req.Name},
		auth.Resource{Kind: auth.KindFeatureService, Project: s.opts.Project, Name: req.FeatureService}); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(s.opts.TempDir, "quiver-flight-put-")
	if err != nil {
		return s.status(ctx, MethodDoPut, fmt.Errorf("stage the entity rows: %w", err))
	}
	defer os.RemoveAll(dir)
	// A fixed name: the lineage records the file's base name and hash, so the same rows sent
	// again reuse the version built from them.
	req.Entities = filepath.Join(dir, "entities.parquet")
	if err := writeEntities(req.Entities, rr); err != nil {
		return s.status(ctx, MethodDoPut, err)
	}
	out, err := s.opts.Datasets.Create(ctx, req)
	if err != nil {
		return s.status(ctx, MethodDoPut, err)
	}
	meta, _ := json.Marshal(PutMetadata{
		InfoMetadata: InfoMetadata{Name: out.Name, Version: out.Version, ContentID: out.ContentID, Rows: out.Rows},
		Parts:        len(out.Parts), Reused: out.Reused,
	})
	return stream.Send(&flight.PutResult{AppMetadata: meta})
}

// writeEntities writes the record batches of rr to a Parquet file at path. The file depends
// on the rows only: the schema is written without its metadata (pandas' own, say) and with
// every column nullable, and the rows in one row group whatever the batches they came in,
// so the same rows sent again make the same file, and reuse the version built from it.
func writeEntities(path string, rr *flight.Reader) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("stage the entity rows: %w", err)
	}
	defer f.Close()
	fields := make([]arrow.Field, rr.Schema().NumFields())
	for i, fd := range rr.Schema().Fields() {
		fields[i] = arrow.Field{Name: fd.Name, Type: fd.Type, Nullable: true}
	}
	schema := arrow.NewSchema(fields, nil)
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithStats(false))
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return fmt.Errorf("%w: entity rows: %w", ErrInvalidRequest, err)
	}
	rows := int64(0)
	for rr.Next() {
		in := rr.RecordBatch()
		rows += in.NumRows()
		rec := array.NewRecordBatch(schema, in.Columns(), in.NumRows())
		err := w.WriteBuffered(rec)
		rec.Release()
		if err != nil {
			_ = w.Close()
			return fmt.Errorf("stage the entity rows: %w", err)
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		_ = w.Close()
		return fmt.Errorf("read the entity rows: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("stage the entity rows: %w", err)
	}
	if rows == 0 {
		return fmt.Errorf("%w: DoPut sent no entity rows", ErrInvalidRequest)
	}
	return nil
}

// parsePath reads a GetFlightInfo descriptor: PATH [NAME] or [NAME, VERSION].
func parsePath(desc *flight.FlightDescriptor) (string, int, error) {
	const want = `want a PATH descriptor ["NAME"] or ["NAME", "VERSION"] (e.g. ["churn_train", "3"])`
	if desc.GetType() != flight.DescriptorPATH || len(desc.GetPath()) == 0 || len(desc.GetPath()) > 2 {
		return "", 0, fmt.Errorf("%w: %s", ErrInvalidRequest, want)
	}
	p := desc.GetPath()
	name := p[0]
	if name == "" {
		return "", 0, fmt.Errorf("%w: empty dataset name: %s", ErrInvalidRequest, want)
	}
	if len(p) == 1 || p[1] == "" || p[1] == "latest" {
		return name, 0, nil
	}
	v, err := strconv.Atoi(strings.TrimPrefix(p[1], "v"))
	if err != nil || v < 1 {
		return "", 0, fmt.Errorf("%w: dataset %q version %q: want a version number 1, 2, ... (or v3, or latest)", ErrInvalidRequest, name, p[1])
	}
	return name, v, nil
}

// parseCommand reads a DoPut descriptor: CMD {"create_dataset": CreateRequest}.
func parseCommand(desc *flight.FlightDescriptor) (CreateRequest, error) {
	const want = `want a CMD descriptor {"create_dataset": {"name": "...", "feature_service": "..."}}`
	if desc == nil || desc.GetType() != flight.DescriptorCMD {
		return CreateRequest{}, fmt.Errorf("%w: DoPut: %s", ErrInvalidRequest, want)
	}
	var cmd struct {
		Create *CreateRequest `json:"create_dataset"`
	}
	dec := json.NewDecoder(strings.NewReader(string(desc.GetCmd())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cmd); err != nil {
		return CreateRequest{}, fmt.Errorf("%w: DoPut command: %v; %s", ErrInvalidRequest, err, want)
	}
	switch {
	case cmd.Create == nil:
		return CreateRequest{}, fmt.Errorf("%w: DoPut: %s", ErrInvalidRequest, want)
	case cmd.Create.Name == "":
		return CreateRequest{}, fmt.Errorf("%w: create_dataset needs a name", ErrInvalidRequest)
	case cmd.Create.FeatureService == "":
		return CreateRequest{}, fmt.Errorf("%w: create_dataset needs a feature_service", ErrInvalidRequest)
	}
	if cmd.Create.At != "" {
		if _, err := time.Parse(time.RFC3339Nano, cmd.Create.At); err != nil {
			return CreateRequest{}, fmt.Errorf("%w: create_dataset at %q: want an RFC 3339 time (2026-01-31T00:00:00Z)", ErrInvalidRequest, cmd.Create.At)
		}
	}
	return *cmd.Create, nil
}

// partSchema is the Arrow schema of a Parquet part, read from its footer.
func partSchema(path string, mem memory.Allocator) (*arrow.Schema, error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return fr.Schema()
}

// authorize checks the caller for rs, when the server authenticates.
func (s *Service) authorize(ctx context.Context, method string, rs ...auth.Resource) error {
	if s.opts.Auth == nil {
		return nil
	}
	return auth.GRPCError(s.opts.Auth.AuthorizeResources(ctx, method, rs...))
}

// status turns err into the call's status error, logging internal ones.
func (s *Service) status(ctx context.Context, method string, err error) error {
	st, internal := serving.StatusOf(ctx, err)
	if internal {
		s.opts.Logger.Error("flight call failed", "method", method, "err", err)
	}
	return st.Err()
}

// recover turns a panic into INTERNAL: a bug in one call must not take the server down.
func (s *Service) recover(_ context.Context, method string, err *error) {
	if r := recover(); r != nil {
		s.opts.Logger.Error("panic in flight handler", "method", method, "panic", r, "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "internal error")
	}
}
