package serving

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
	"github.com/quiverfs/quiver/serving/auth"
	"github.com/quiverfs/quiver/value"
)

// The plain JSON form of GetOnlineFeatures, for curl and languages without gRPC, beside the
// typed form of the gateway (http.go):
//
//	POST /v1/online-features
//	{"feature_service": "churn_v1", "entities": {"user_id": [7, 8]}}
//	→ {"rows": 2, "features": {"clicks_7d": [3, null], ...},
//	   "statuses": {"clicks_7d": ["PRESENT", "NOT_FOUND"], ...}}
//
// The request takes "feature_service" or "features" (["view:feature", ...]), "entities" and
// "request_context" as columns of plain JSON values (an integer literal is an int64, kept to
// the last digit; other numbers float64; strings, booleans, null, and arrays of those),
// "full_feature_names" and "include_event_timestamps" (adds "event_timestamps": RFC 3339 UTC
// strings, null where nothing is stored). Feature columns are in the service's order; values
// are plain: integers as JSON numbers with every digit, floats in their shortest form (NaN and
// ±Infinity as the strings "NaN", "Infinity", "-Infinity", as protobuf's JSON writes them),
// bytes as base64, timestamps as RFC 3339 UTC strings. The answer is written by hand into a
// pooled buffer: no protojson, no reflection.

const plainPath = "/v1/online-features"

// plainRequest is the plain JSON request.
type plainRequest struct {
	FeatureService         string                       `json:"feature_service"`
	Features               []string                     `json:"features"`
	Entities               map[string][]json.RawMessage `json:"entities"`
	RequestContext         map[string][]json.RawMessage `json:"request_context"`
	FullFeatureNames       bool                         `json:"full_feature_names"`
	IncludeEventTimestamps bool                         `json:"include_event_timestamps"`
}

var plainBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// httpOnlineFeatures serves POST /v1/online-features.
func (s *Server) httpOnlineFeatures(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	bp := plainBuffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 1<<20 { // do not keep a huge answer's buffer
			plainBuffers.Put(bp)
		}
	}()
	body, err := readBody((*bp)[:0], r.Body)
	if err != nil {
		s.httpError(ctx, nil, nil, w, r, s.finish(ctx, "GetOnlineFeatures", "unknown", start, invalidf("read the request body: %v", err)))
		return
	}
	out, label, err := s.plainOnlineFeatures(r, body)
	if err == nil {
		err = ctx.Err()
	}
	if err := s.finish(ctx, "GetOnlineFeatures", label, start, err); err != nil {
		*bp = body[:0]
		s.httpError(ctx, nil, nil, w, r, err)
		return
	}
	*bp = out[:0]
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// readBody appends the whole body to b.
func readBody(b []byte, body io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// plainOnlineFeatures decodes body, retrieves the features and writes the answer over body's
// buffer (body is not read after decoding); it returns the answer and the metrics label.
func (s *Server) plainOnlineFeatures(r *http.Request, body []byte) ([]byte, string, error) {
	var req plainRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, "unknown", invalidf("decode the request: %v; want {\"feature_service\": \"NAME\", \"entities\": {\"user_id\": [7, 8]}}", err)
	}
	if dec.More() {
		return nil, "unknown", invalidf("the request body holds more than one JSON value")
	}
	if s.opts.Auth != nil {
		// The same policy as GetOnlineFeatures over gRPC and the typed form.
		areq := &pb.GetOnlineFeaturesRequest{}
		if req.FeatureService != "" {
			areq.Kind = &pb.GetOnlineFeaturesRequest_FeatureService{FeatureService: req.FeatureService}
		} else {
			areq.Kind = &pb.GetOnlineFeaturesRequest_Features{Features: &pb.FeatureList{Val: req.Features}}
		}
		if err := s.opts.Auth.Authorize(r.Context(), auth.MethodGetOnlineFeatures, areq); err != nil {
			return nil, "unknown", auth.GRPCError(err)
		}
	}
	fr := FeatureRequest{FeatureService: req.FeatureService, Features: req.Features, FullFeatureNames: req.FullFeatureNames}
	var err error
	if fr.Entities, err = plainColumns("entities", req.Entities); err != nil {
		return nil, "unknown", err
	}
	if fr.RequestContext, err = plainColumns("request_context", req.RequestContext); err != nil {
		return nil, "unknown", err
	}
	p, res, label, err := s.retrieve(r.Context(), fr)
	if err != nil {
		return nil, label, err
	}
	defer res.Release()
	b := body[:0]
	b = append(b, `{"rows":`...)
	b = strconv.AppendInt(b, int64(res.Rows), 10)
	b = append(b, `,"features":{`...)
	b = appendPerFeature(b, p, res, func(c *FeatureColumn) int { return len(c.Values) }, func(b []byte, c *FeatureColumn, j int) []byte {
		return appendPlainValue(b, c.Values[j])
	})
	b = append(b, `},"statuses":{`...)
	b = appendPerFeature(b, p, res, func(c *FeatureColumn) int { return len(c.Statuses) }, func(b []byte, c *FeatureColumn, j int) []byte {
		b = append(b, '"')
		b = append(b, c.Statuses[j].String()...)
		return append(b, '"')
	})
	b = append(b, '}')
	if req.IncludeEventTimestamps {
		b = append(b, `,"event_timestamps":{`...)
		b = appendPerFeature(b, p, res, func(c *FeatureColumn) int { return len(c.EventTS) }, func(b []byte, c *FeatureColumn, j int) []byte {
			ts := c.EventTS[j]
			if ts.IsZero() {
				return append(b, "null"...)
			}
			b = append(b, '"')
			b = ts.UTC().AppendFormat(b, time.RFC3339Nano)
			return append(b, '"')
		})
		b = append(b, '}')
	}
	b = append(b, "}\n"...)
	return b, label, nil
}

// appendPerFeature appends "NAME":[…] for each feature of the plan, comma-separated (the
// caller writes the enclosing braces): n(column) elements, each written by elem.
func appendPerFeature(b []byte, p *readPlan, res *online.ReadResult, n func(*FeatureColumn) int, elem func(b []byte, c *FeatureColumn, j int) []byte) []byte {
	for i := range p.features {
		c := planColumn(p, res, i)
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c.Name)
		b = append(b, ":["...)
		for j := range n(&c) {
			if j > 0 {
				b = append(b, ',')
			}
			b = elem(b, &c, j)
		}
		b = append(b, ']')
	}
	return b
}

// plainColumns converts columns of plain JSON values.
func plainColumns(what string, cols map[string][]json.RawMessage) (map[string][]online.Value, error) {
	if len(cols) == 0 {
		return nil, nil
	}
	out := make(map[string][]online.Value, len(cols))
	for name, raw := range cols {
		vals := make([]online.Value, len(raw))
		for i, r := range raw {
			v, err := plainValue(r)
			if err != nil {
				return nil, invalidf("%s %q row %d: %v", what, name, i, err)
			}
			vals[i] = v
		}
		out[name] = vals
	}
	return out, nil
}

// plainValue reads one plain JSON value: an integer literal is an int64, another number a
// float64; strings, booleans, null; an array of one of those kinds.
func plainValue(r json.RawMessage) (online.Value, error) {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return online.Null(), errors.New("empty value")
	}
	switch c := r[0]; {
	case c == 'n':
		return online.Null(), nil
	case c == 't' || c == 'f':
		return value.NewBool(c == 't'), nil
	case c == '"':
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return online.Null(), err
		}
		return value.NewString(s), nil
	case c == '[':
		return plainArray(r)
	case c == '-' || (c >= '0' && c <= '9'):
		if n, err := strconv.ParseInt(string(r), 10, 64); err == nil {
			return value.NewInt64(n), nil
		}
		if bytes.ContainsAny(r, ".eE") {
			f, err := strconv.ParseFloat(string(r), 64)
			if err != nil {
				return online.Null(), fmt.Errorf("number %s: %w", r, err)
			}
			return value.NewFloat64(f), nil
		}
		return online.Null(), fmt.Errorf("integer %s does not fit int64", r)
	}
	return online.Null(), fmt.Errorf("%s is not a JSON number, string, boolean, null or array of those", r)
}

func plainArray(r json.RawMessage) (online.Value, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(r, &items); err != nil {
		return online.Null(), err
	}
	vals := make([]online.Value, len(items))
	kind := value.Invalid
	for i, it := range items {
		v, err := plainValue(it)
		if err != nil {
			return online.Null(), fmt.Errorf("element %d: %w", i, err)
		}
		t := v.Type()
		if v.IsNull() || t.Array {
			return online.Null(), fmt.Errorf("element %d: arrays hold numbers, strings or booleans, not null or arrays", i)
		}
		switch {
		case kind == value.Invalid:
			kind = t.Elem
		case kind == value.Int64 && t.Elem == value.Float64:
			kind = value.Float64
		case kind == value.Float64 && t.Elem == value.Int64:
		case kind != t.Elem:
			return online.Null(), fmt.Errorf("element %d is a %s in an array of %s", i, t.Elem, kind)
		}
		vals[i] = v
	}
	switch kind {
	case value.Int64:
		out := make([]int64, len(vals))
		for i, v := range vals {
			out[i] = v.Int64()
		}
		return value.NewInt64s(out), nil
	case value.Float64, value.Invalid: // [] is an empty float64 array; Coerce takes it for any array
		out := make([]float64, len(vals))
		for i, v := range vals {
			if v.Type().Elem == value.Int64 {
				out[i] = float64(v.Int64())
			} else {
				out[i] = v.Float64()
			}
		}
		return value.NewFloat64s(out), nil
	case value.String:
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = v.Str()
		}
		return value.NewStrings(out), nil
	default: // value.Bool
		out := make([]bool, len(vals))
		for i, v := range vals {
			out[i] = v.Bool()
		}
		return value.NewBools(out), nil
	}
}

// appendPlainValue writes v as a plain JSON value.
func appendPlainValue(b []byte, v online.Value) []byte {
	if v.IsNull() {
		return append(b, "null"...)
	}
	t := v.Type()
	if !t.Array {
		switch t.Elem {
		case value.Int32:
			return strconv.AppendInt(b, int64(v.Int32()), 10)
		case value.Int64:
			return strconv.AppendInt(b, v.Int64(), 10)
		case value.Float32:
			return appendFloat(b, float64(v.Float32()), 32)
		case value.Float64:
			return appendFloat(b, v.Float64(), 64)
		case value.Bool:
			return strconv.AppendBool(b, v.Bool())
		case value.String:
			return appendJSONString(b, v.Str())
		case value.Bytes:
			return appendBase64(b, v.BytesValue())
		case value.Timestamp:
			return appendTime(b, v.Time())
		}
		return append(b, "null"...)
	}
	b = append(b, '[')
	switch t.Elem {
	case value.Int32:
		for i, x := range v.Int32s() {
			b = comma(b, i)
			b = strconv.AppendInt(b, int64(x), 10)
		}
	case value.Int64:
		for i, x := range v.Int64s() {
			b = comma(b, i)
			b = strconv.AppendInt(b, x, 10)
		}
	case value.Float32:
		for i, x := range v.Float32s() {
			b = comma(b, i)
			b = appendFloat(b, float64(x), 32)
		}
	case value.Float64:
		for i, x := range v.Float64s() {
			b = comma(b, i)
			b = appendFloat(b, x, 64)
		}
	case value.Bool:
		for i, x := range v.Bools() {
			b = comma(b, i)
			b = strconv.AppendBool(b, x)
		}
	case value.String:
		for i, x := range v.Strings() {
			b = comma(b, i)
			b = appendJSONString(b, x)
		}
	case value.Bytes:
		for i, x := range v.BytesArray() {
			b = comma(b, i)
			b = appendBase64(b, x)
		}
	case value.Timestamp:
		for i, x := range v.Timestamps() {
			b = comma(b, i)
			b = appendTime(b, x)
		}
	}
	return append(b, ']')
}

func comma(b []byte, i int) []byte {
	if i > 0 {
		return append(b, ',')
	}
	return b
}

func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

func appendBase64(b []byte, p []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string, escaping what JSON requires and what HTML
// would misread (as encoding/json does), and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
