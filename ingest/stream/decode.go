package stream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/avro"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// errBadMessage marks a message that cannot be read as a row of the view.
var errBadMessage = errors.New("bad message")

// decoder turns message values into rows of one view.
type decoder struct {
	view     *ingest.View
	src      *definitions.KafkaSource
	avro     *avro.Schema // nil for JSON
	cols     []offline.Column
	fields   []string // message field of each of cols
	nKeys    int
	tsField  string
	crtField string
}

func newDecoder(v *ingest.View, src *definitions.Source) (*decoder, error) {
	k := src.Kafka
	d := &decoder{view: v, src: k, tsField: src.TimestampField, crtField: src.CreatedTimestampField, nKeys: len(v.Schema.JoinKeys)}
	if k.Format == definitions.KafkaAvro {
		s, err := avro.Parse(k.Schema)
		if err != nil {
			return nil, fmt.Errorf("source %q: avro schema: %w: %w", src.Name, err, definitions.ErrInvalid)
		}
		d.avro = s
	}
	known := map[string]bool{}
	for _, c := range append(append([]offline.Column{}, v.Schema.JoinKeys...), v.Schema.Features...) {
		d.cols = append(d.cols, c)
		d.fields = append(d.fields, k.Field(c.Name))
		known[c.Name] = true
	}
	for col := range k.Fields {
		if !known[col] {
			return nil, fmt.Errorf("source %q: fields maps %q, which is not a join key or feature of view %q: %w", src.Name, col, v.Name, definitions.ErrInvalid)
		}
	}
	return d, nil
}

// row is one decoded message.
type row struct {
	values    []online.Value // one per d.cols
	eventTS   time.Time
	createdTS time.Time
}

// decode reads one message value. Errors wrap errBadMessage and name the field.
func (d *decoder) decode(value []byte) (row, error) {
	var m map[string]any
	if d.avro != nil {
		if _, err := d.avro.Decode(value, &m); err != nil {
			return row{}, fmt.Errorf("%w: not an Avro record of the source's schema: %v", errBadMessage, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(value))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil || m == nil {
			return row{}, fmt.Errorf("%w: not a JSON object: %v", errBadMessage, err)
		}
	}
	r := row{values: make([]online.Value, len(d.cols))}
	for i, c := range d.cols {
		raw, ok := m[d.fields[i]]
		if !ok || raw == nil {
			if i < d.nKeys {
				return row{}, fmt.Errorf("%w: join key field %q missing or null", errBadMessage, d.fields[i])
			}
			continue // a missing feature is null
		}
		v, err := toValue(raw, c.Type)
		if err != nil {
			return row{}, fmt.Errorf("%w: field %q: %v", errBadMessage, d.fields[i], err)
		}
		r.values[i] = v
	}
	ts, err := toTime(m[d.tsField])
	if err != nil || ts.IsZero() {
		return row{}, fmt.Errorf("%w: event time field %q: missing or not a time (RFC 3339 string or epoch milliseconds)", errBadMessage, d.tsField)
	}
	r.eventTS = ts
	if d.crtField != "" && m[d.crtField] != nil {
		if r.createdTS, err = toTime(m[d.crtField]); err != nil {
			return row{}, fmt.Errorf("%w: created time field %q: %v", errBadMessage, d.crtField, err)
		}
	}
	return r, nil
}

func toTime(v any) (time.Time, error) {
	switch t := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return t.UTC(), nil
	case string:
		return time.Parse(time.RFC3339Nano, t)
	case json.Number:
		ms, err := t.Int64()
		if err != nil {
			return time.Time{}, err
		}
		return time.UnixMilli(ms).UTC(), nil
	case int64:
		return time.UnixMilli(t).UTC(), nil
	case int32:
		return time.UnixMilli(int64(t)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%T is not a time", v)
}

// toValue converts a decoded JSON or Avro value to type t.
func toValue(raw any, t definitions.Type) (online.Value, error) {
	if t.Array {
		list, ok := raw.([]any)
		if !ok {
			return online.Value{}, fmt.Errorf("want a list for %s, got %T", t, raw)
		}
		return arrayValue(list, t.Elem)
	}
	return scalarValue(raw, t.Elem)
}

func scalarValue(raw any, s definitions.Scalar) (online.Value, error) {
	bad := func() (online.Value, error) { return online.Value{}, fmt.Errorf("%v (%T) is not a %s", raw, raw, s) }
	switch s {
	case definitions.Int32, definitions.Int64:
		var i int64
		switch n := raw.(type) {
		case json.Number:
			v, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				return bad()
			}
			i = v
		case int64:
			i = n
		case int32:
			i = int64(n)
		case int:
			i = int64(n)
		default:
			return bad()
		}
		if s == definitions.Int32 {
			if i < math.MinInt32 || i > math.MaxInt32 {
				return bad()
			}
			return online.Int32(int32(i)), nil
		}
		return online.Int64(i), nil
	case definitions.Float32, definitions.Float64:
		var f float64
		switch n := raw.(type) {
		case json.Number:
			v, err := n.Float64()
			if err != nil {
				return bad()
			}
			f = v
		case float64:
			f = n
		case float32:
			f = float64(n)
		case int64:
			f = float64(n)
		case int32:
			f = float64(n)
		default:
			return bad()
		}
		if s == definitions.Float32 {
			return online.Float32(float32(f)), nil
		}
		return online.Float64(f), nil
	case definitions.Bool:
		b, ok := raw.(bool)
		if !ok {
			return bad()
		}
		return online.Bool(b), nil
	case definitions.String:
		str, ok := raw.(string)
		if !ok {
			return bad()
		}
		return online.String(str), nil
	case definitions.Bytes:
		switch b := raw.(type) {
		case []byte:
			return online.Bytes(b), nil
		case string: // JSON: base64
			dec, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				return bad()
			}
			return online.Bytes(dec), nil
		}
		return bad()
	case definitions.Timestamp:
		ts, err := toTime(raw)
		if err != nil || ts.IsZero() {
			return bad()
		}
		return online.Timestamp(ts), nil
	}
	return bad()
}

func arrayValue(list []any, s definitions.Scalar) (online.Value, error) {
	vals := make([]online.Value, len(list))
	for i, e := range list {
		if e == nil {
			return online.Value{}, fmt.Errorf("element %d is null; arrays cannot hold nulls", i)
		}
		v, err := scalarValue(e, s)
		if err != nil {
			return online.Value{}, fmt.Errorf("element %d: %w", i, err)
		}
		vals[i] = v
	}
	switch s {
	case definitions.Int32:
		out := make([]int32, len(vals))
		for i, v := range vals {
			out[i] = v.Int32()
		}
		return online.Int32s(out), nil
	case definitions.Int64:
		out := make([]int64, len(vals))
		for i, v := range vals {
			out[i] = v.Int64()
		}
		return online.Int64s(out), nil
	case definitions.Float32:
		out := make([]float32, len(vals))
		for i, v := range vals {
			out[i] = v.Float32()
		}
		return online.Float32s(out), nil
	case definitions.Float64:
		out := make([]float64, len(vals))
		for i, v := range vals {
			out[i] = v.Float64()
		}
		return online.Float64s(out), nil
	case definitions.Bool:
		out := make([]bool, len(vals))
		for i, v := range vals {
			out[i] = v.Bool()
		}
		return online.Bools(out), nil
	case definitions.String:
		out := make([]string, len(vals))
		for i, v := range vals {
			out[i] = v.Str()
		}
		return online.Strings(out), nil
	case definitions.Bytes:
		out := make([][]byte, len(vals))
		for i, v := range vals {
			out[i] = v.BytesValue()
		}
		return online.BytesArray(out), nil
	case definitions.Timestamp:
		out := make([]time.Time, len(vals))
		for i, v := range vals {
			out[i] = v.Time()
		}
		return online.Timestamps(out), nil
	}
	return online.Value{}, fmt.Errorf("unsupported array type array<%s>", s)
}
