package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// How applied objects read for people: one line (Summary) or their spec as YAML.

// Summary is a one-line description of an applied object (quiver list).
func Summary(o registry.ObjectVersion) string {
	obj, err := definitions.DecodeSpec(o.Kind, o.Spec)
	if err != nil {
		return "(unreadable spec: " + err.Error() + ")"
	}
	switch t := obj.(type) {
	case *definitions.Entity:
		keys := make([]string, len(t.JoinKeys))
		for i, k := range t.JoinKeys {
			keys[i] = k.Name + " " + k.Type.String()
		}
		return "keys: " + strings.Join(keys, ", ")
	case *definitions.Source:
		switch {
		case t.Parquet != nil:
			return "parquet " + t.Parquet.Path
		case t.Iceberg != nil:
			return "iceberg " + t.Iceberg.Table
		case t.Trino != nil && t.Trino.Table != "":
			return "trino table " + t.Trino.Table
		case t.Trino != nil:
			return "trino query"
		}
	case *definitions.FeatureView:
		head := fmt.Sprintf("%d features of %s from %s", len(t.Features), strings.Join(t.Entities, ","), t.Source)
		if t.IsAggregation() { // no ttl: its windows say how far back it reads
			aggs := make([]string, len(t.Aggregations))
			for i, g := range t.Aggregations {
				ws := make([]string, len(g.Windows))
				for j, w := range g.Windows {
					ws[j] = w.String()
				}
				aggs[i] = fmt.Sprintf("%s(%s) over %s", g.Function, g.Column, strings.Join(ws, ","))
			}
			return head + ": " + strings.Join(aggs, "; ")
		}
		if t.TTL == 0 {
			return head + ", no ttl"
		}
		return fmt.Sprintf("%s, ttl %s", head, t.TTL)
	case *definitions.FeatureService:
		refs := make([]string, len(t.Features))
		for i, r := range t.Features {
			refs[i] = r.String()
		}
		return strings.Join(refs, ", ")
	case *definitions.Model:
		return t.Runtime + " model on " + t.FeatureService
	case *definitions.TrainingJob:
		return fmt.Sprintf("trains on %s: %s", t.FeatureService, strings.Join(t.Command, " "))
	case *definitions.RequestSource:
		fields := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			fields[i] = f.Name + " " + f.Type.String()
		}
		return "fields: " + strings.Join(fields, ", ")
	case *definitions.OnDemandFeatureView:
		return fmt.Sprintf("%d on-demand features from %s", len(t.Features), strings.Join(t.Inputs, ","))
	}
	return ""
}

// WriteSpecYAML writes an applied object's spec (its canonical JSON) as YAML, keeping the
// spec's field order, each line indented by indent (quiver describe).
func WriteSpecYAML(w io.Writer, spec []byte, indent string) error {
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.UseNumber()
	node, err := jsonToNode(dec)
	if err != nil {
		return fmt.Errorf("render spec: %w", err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return fmt.Errorf("render spec: %w", err)
	}
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		fmt.Fprintln(w, indent+line)
	}
	return nil
}

// jsonToNode reads one JSON value from dec into a YAML node, preserving object key order.
func jsonToNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode}
		if t == '{' {
			n.Kind = yaml.MappingNode
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: fmt.Sprint(k)})
			}
			v, err := jsonToNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, err := dec.Token(); err != nil { // closing delimiter
			return nil, err
		}
		if n.Kind == yaml.SequenceNode && len(n.Content) > 0 && n.Content[0].Kind == yaml.ScalarNode {
			n.Style = yaml.FlowStyle
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}, nil
	case json.Number:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: strconv.FormatBool(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}
