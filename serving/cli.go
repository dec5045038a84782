package serving

import (
	"encoding/base64"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
	pb "github.com/quiverfs/quiver/proto/quiver/serving/v1"
)

// Helpers for `quiver get-online`: parse --entity flags, print a response for people or
// scripts.

// ParseEntities turns "join_key=value" strings into entity columns, typed by the join keys'
// declared types in d. A join key given several times makes several rows, in order; every
// join key must be given the same number of times.
func ParseEntities(d *Definitions, args []string) (map[string]*pb.RepeatedValue, error) {
	types := map[string]definitions.Type{}
	for _, e := range d.Repo.Entities {
		for _, k := range e.JoinKeys {
			types[k.Name] = k.Type
		}
	}
	valid := make([]string, 0, len(types))
	for k := range types {
		valid = append(valid, k)
	}
	sort.Strings(valid)
	out := map[string]*pb.RepeatedValue{}
	for _, a := range args {
		name, raw, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, invalidf("entity %q is not of the form join_key=value", a)
		}
		t, ok := types[name]
		if !ok {
			return nil, tagf(ErrUnknown, "unknown join key %q (join keys: %s)%s", name, strings.Join(valid, ", "), definitions.Suggest(name, valid))
		}
		v, err := parseScalar(raw, t)
		if err != nil {
			return nil, invalidf("entity %s: %v", a, err)
		}
		if out[name] == nil {
			out[name] = &pb.RepeatedValue{}
		}
		out[name].Val = append(out[name].Val, v)
	}
	return out, nil
}

func parseScalar(s string, t definitions.Type) (*pb.Value, error) {
	switch t.Elem {
	case definitions.Int32:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("want an int32")
		}
		return &pb.Value{Kind: &pb.Value_Int32Val{Int32Val: int32(n)}}, nil
	case definitions.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want an int64")
		}
		return &pb.Value{Kind: &pb.Value_Int64Val{Int64Val: n}}, nil
	case definitions.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want true or false")
		}
		return &pb.Value{Kind: &pb.Value_BoolVal{BoolVal: b}}, nil
	case definitions.String:
		return &pb.Value{Kind: &pb.Value_StringVal{StringVal: s}}, nil
	case definitions.Bytes:
		return &pb.Value{Kind: &pb.Value_BytesVal{BytesVal: []byte(s)}}, nil
	case definitions.Timestamp:
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("want an RFC 3339 time")
		}
		return toProto(online.Timestamp(ts)), nil
	}
	return nil, fmt.Errorf("join keys of type %s cannot be given on the command line", t)
}

// FormatValue renders a wire value for people: null as "null", lists in brackets, bytes in
// base64, timestamps in RFC 3339.
func FormatValue(v *pb.Value) string {
	switch k := v.GetKind().(type) {
	case nil:
		return "null"
	case *pb.Value_Int32Val:
		return strconv.FormatInt(int64(k.Int32Val), 10)
	case *pb.Value_Int64Val:
		return strconv.FormatInt(k.Int64Val, 10)
	case *pb.Value_FloatVal:
		return strconv.FormatFloat(float64(k.FloatVal), 'g', -1, 32)
	case *pb.Value_DoubleVal:
		return strconv.FormatFloat(k.DoubleVal, 'g', -1, 64)
	case *pb.Value_BoolVal:
		return strconv.FormatBool(k.BoolVal)
	case *pb.Value_StringVal:
		return strconv.Quote(k.StringVal)
	case *pb.Value_BytesVal:
		return base64.StdEncoding.EncodeToString(k.BytesVal)
	case *pb.Value_TimestampVal:
		return k.TimestampVal.AsTime().UTC().Format(time.RFC3339Nano)
	}
	// Lists: format each element as its scalar would be.
	var elems []string
	switch k := v.GetKind().(type) {
	case *pb.Value_Int32ListVal:
		for _, x := range k.Int32ListVal.GetVal() {
			elems = append(elems, FormatValue(&pb.Value{Kind: &pb.Value_Int32Val{Int32Val: x}}))
		}
	case *pb.Value_Int64ListVal:
		for _, x := range k.Int64ListVal.GetVal() {
			elems = append(elems, FormatValue(&pb.Value{Kind: &pb.Value_Int64Val{Int64Val: x}}))
		}
	case *pb.Value_FloatListVal:
		for _, x := range k.FloatListVal.GetVal() {
			elems = append(elems, FormatValue(&pb.Value{Kind: &pb.Value_FloatVal{FloatVal: x}}))
		}
	case *pb.Value_DoubleListVal:
		for _, x := range k.DoubleListVal.GetVal() {
			elems = append(elems, FormatValue(&pb.Value{Kind: &pb.Value_DoubleVal{DoubleVal: x}}))
		}
	case *pb.Value_BoolListVal:
		for _, x := range k.BoolListVal.GetVal() {
			elems = append(elems, strconv.FormatBool(x))
		}
	case *pb.Value_StringListVal:
		for _, x := range k.StringListVal.GetVal() {
			elems = append(elems, strconv.Quote(x))
		}
	case *pb.Value_BytesListVal:
		for _, x := range k.BytesListVal.GetVal() {
			elems = append(elems, base64.StdEncoding.EncodeToString(x))
		}
	case *pb.Value_TimestampListVal:
		for _, x := range k.TimestampListVal.GetVal() {
			elems = append(elems, x.AsTime().UTC().Format(time.RFC3339Nano))
		}
	}
	return "[" + strings.Join(elems, ", ") + "]"
}

// WriteTable prints one line per (row, feature): ROW, FEATURE, VALUE, STATUS, EVENT_TIME.
func WriteTable(w io.Writer, resp *pb.GetOnlineFeaturesResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROW\tFEATURE\tVALUE\tSTATUS\tEVENT_TIME")
	for r := range int(resp.GetRows()) {
		for _, f := range resp.GetFeatures() {
			if r >= VectorLen(f.GetValues()) || r >= len(f.GetStatuses()) || r >= len(f.GetEventTimestampsMicros()) {
				return fmt.Errorf("response column %q is shorter than %d rows", f.GetName(), resp.GetRows())
			}
			value, ts := "null", "-"
			if !IsNull(f, r) {
				value = FormatValue(VectorValue(f.GetValues(), r))
			}
			// On-demand features have no event time (0): they are computed per request.
			if f.GetStatuses()[r] != pb.FieldStatus_NOT_FOUND && f.GetEventTimestampsMicros()[r] != 0 {
				ts = time.UnixMicro(f.GetEventTimestampsMicros()[r]).UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s:%s\t%s\t%s\t%s\n", r, f.GetView(), f.GetName(), value, f.GetStatuses()[r], ts)
		}
	}
	return tw.Flush()
}

// WriteJSON prints the response in protobuf's canonical JSON form, for scripts.
func WriteJSON(w io.Writer, resp *pb.GetOnlineFeaturesResponse) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", EmitUnpopulated: false}.Marshal(resp)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WritePrediction writes a Predict response as a table: one row per entity row, one column
// per output (quiver predict).
func WritePrediction(w io.Writer, resp *pb.PredictResponse) error {
	fmt.Fprintf(w, "model %s version %s (feature service %s), %d row(s):\n", resp.GetModelName(), resp.GetModelVersion(), resp.GetFeatureService(), resp.GetRows())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "  ROW"
	for _, o := range resp.GetOutputs() {
		header += "\t" + strings.ToUpper(o.GetName())
	}
	fmt.Fprintln(tw, header)
	for r := 0; r < int(resp.GetRows()); r++ {
		line := "  " + strconv.Itoa(r)
		for _, o := range resp.GetOutputs() {
			line += "\t" + FormatValue(o.GetValues()[r])
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}
