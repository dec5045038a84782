package stream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/avro"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/value"
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

// toValue converts a decoded JSON or Avro value to type t: the message's own value, converted
// by the one rule (value.Coerce). A JSON number is an int64 when it is an integer, else a
// float64; JSON carries bytes as base64 strings and timestamps, like Avro's long timestamps, as
// RFC 3339 strings or epoch milliseconds.
func toValue(raw any, t definitions.Type) (online.Value, error) {
	if !t.Array {
		return scalarValue(raw, t.Elem)
	}
	list, ok := raw.([]any)
	if !ok {
		return online.Value{}, fmt.Errorf("want a list for %s, got %T", t, raw)
	}
	elems := make([]value.Value, len(list))
	for i, e := range list {
		if e == nil {
			return online.Value{}, fmt.Errorf("element %d is null; arrays cannot hold nulls", i)
		}
		v, err := scalarValue(e, t.Elem)
		if err != nil {
			return online.Value{}, fmt.Errorf("element %d: %w", i, err)
		}
		elems[i] = v
	}
	return value.NewArray(t.Elem, elems)
}

func scalarValue(raw any, s definitions.Scalar) (online.Value, error) {
	bad := func() (online.Value, error) { return online.Value{}, fmt.Errorf("%v (%T) is not a %s", raw, raw, s) }
	switch s {
	case definitions.Timestamp:
		ts, err := toTime(raw)
		if err != nil || ts.IsZero() {
			return bad()
		}
		return value.NewTimestamp(ts), nil
	case definitions.Bytes:
		if b, ok := raw.(string); ok { // JSON: base64
			dec, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				return bad()
			}
			return value.NewBytes(dec), nil
		}
	}
	var v value.Value
	switch x := raw.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			v = value.NewInt64(i)
		} else if f, err := x.Float64(); err == nil {
			v = value.NewFloat64(f)
		} else {
			return bad()
		}
	case int64:
		v = value.NewInt64(x)
	case int32:
		v = value.NewInt32(x)
	case int:
		v = value.NewInt64(int64(x))
	case float64:
		v = value.NewFloat64(x)
	case float32:
		v = value.NewFloat32(x)
	case bool:
		v = value.NewBool(x)
	case string:
		v = value.NewString(x)
	case []byte:
		v = value.NewBytes(x)
	default:
		return bad()
	}
	out, err := value.Coerce(v, definitions.Type{Elem: s})
	if err != nil {
		return online.Value{}, fmt.Errorf("%v: %w", raw, err)
	}
	return out, nil
}
