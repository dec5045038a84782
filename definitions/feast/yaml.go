package feast

import (
	"bytes"
	"fmt"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/definitions"
)

// Marshal writes definitions as one Quiver definitions file: the kinds in dependency order,
// each object's keys in the order docs/definitions.md shows them, fields and feature
// references in flow style. header, when not empty, is a comment at the top (each line
// prefixed with "# ").
func Marshal(objects []definitions.Object, header string) ([]byte, error) {
	groups := map[definitions.Kind][]*yaml.Node{}
	for _, o := range objects {
		n, err := objectNode(o)
		if err != nil {
			return nil, err
		}
		groups[o.ObjectKind()] = append(groups[o.ObjectKind()], n)
	}
	doc := mapping()
	for _, k := range definitions.Kinds {
		if len(groups[k]) == 0 {
			continue
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Content: groups[k]}
		add(doc, yamlKey(k), seq)
	}
	if header != "" {
		doc.HeadComment = header
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode definitions: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode definitions: %w", err)
	}
	return b.Bytes(), nil
}

// yamlKey is the top-level key of a kind (definitions.Kind's unexported yamlKey, for the kinds
// an import writes).
func yamlKey(k definitions.Kind) string {
	switch k {
	case definitions.KindEntity:
		return "entities"
	case definitions.KindSource:
		return "sources"
	case definitions.KindRequestSource:
		return "request_sources"
	case definitions.KindFeatureView:
		return "feature_views"
	case definitions.KindOnDemandView:
		return "on_demand_feature_views"
	case definitions.KindFeatureService:
		return "feature_services"
	case definitions.KindModel:
		return "models"
	case definitions.KindTrainingJob:
		return "training_jobs"
	}
	return string(k)
}

func objectNode(o definitions.Object) (*yaml.Node, error) {
	m := mapping()
	switch o := o.(type) {
	case *definitions.Entity:
		add(m, "name", str(o.Name))
		add(m, "join_keys", fields(o.JoinKeys))
		describeAndTag(m, o.Description, o.Tags)
	case *definitions.Source:
		add(m, "name", str(o.Name))
		switch {
		case o.Parquet != nil:
			p := flow(mapping())
			add(p, "path", str(o.Parquet.Path))
			add(m, "parquet", p)
		case o.Push != nil:
			add(m, "push", flow(mapping()))
		case o.Kafka != nil:
			add(m, "kafka", kafkaNode(o.Kafka))
		case o.Trino != nil:
			t := mapping()
			if o.Trino.Query != "" {
				add(t, "query", str(o.Trino.Query))
			} else {
				add(t, "table", str(o.Trino.Table))
			}
			add(m, "trino", t)
		case o.Iceberg != nil:
			t := flow(mapping())
			add(t, "table", str(o.Iceberg.Table))
			add(m, "iceberg", t)
		default:
			return nil, fmt.Errorf("source %q has no kind", o.Name)
		}
		add(m, "timestamp_field", str(o.TimestampField))
		if o.CreatedTimestampField != "" {
			add(m, "created_timestamp_field", str(o.CreatedTimestampField))
		}
		describeAndTag(m, o.Description, o.Tags)
	case *definitions.RequestSource:
		add(m, "name", str(o.Name))
		add(m, "fields", fields(o.Fields))
		describeAndTag(m, o.Description, o.Tags)
	case *definitions.FeatureView:
		if o.IsAggregation() {
			return nil, fmt.Errorf("feature view %q: aggregation views are not written by an import", o.Name)
		}
		add(m, "name", str(o.Name))
		ents := flow(&yaml.Node{Kind: yaml.SequenceNode})
		for _, e := range o.Entities {
			ents.Content = append(ents.Content, str(e))
		}
		add(m, "entities", ents)
		add(m, "source", str(o.Source))
		if o.TTL != 0 {
			add(m, "ttl", str(o.TTL.String()))
		}
		add(m, "online", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(o.Online)})
		add(m, "features", fields(o.Features))
		describeAndTag(m, o.Description, o.Tags)
	case *definitions.OnDemandFeatureView:
		add(m, "name", str(o.Name))
		in := flow(&yaml.Node{Kind: yaml.SequenceNode})
		for _, i := range o.Inputs {
			in.Content = append(in.Content, str(i))
		}
		add(m, "inputs", in)
		seq := &yaml.Node{Kind: yaml.SequenceNode}
		for _, f := range o.Features {
			fm := mapping()
			add(fm, "name", str(f.Name))
			add(fm, "type", str(f.Type.String()))
			add(fm, "expr", str(f.Expr))
			if f.Description != "" {
				add(fm, "description", str(f.Description))
			}
			seq.Content = append(seq.Content, fm)
		}
		add(m, "features", seq)
		describeAndTag(m, o.Description, o.Tags)
	case *definitions.FeatureService:
		add(m, "name", str(o.Name))
		refs := &yaml.Node{Kind: yaml.SequenceNode}
		for _, r := range o.Features {
			refs.Content = append(refs.Content, str(r.String()))
		}
		add(m, "features", refs)
		describeAndTag(m, o.Description, o.Tags)
	default:
		return nil, fmt.Errorf("%s %q: not written by an import", o.ObjectKind().Label(), o.ObjectName())
	}
	return m, nil
}

func kafkaNode(k *definitions.KafkaSource) *yaml.Node {
	m := mapping()
	b := flow(&yaml.Node{Kind: yaml.SequenceNode})
	for _, s := range k.Brokers {
		b.Content = append(b.Content, str(s))
	}
	add(m, "brokers", b)
	add(m, "topic", str(k.Topic))
	if k.Group != "" {
		add(m, "group", str(k.Group))
	}
	if k.Format != "" {
		add(m, "format", str(k.Format))
	}
	if k.Schema != "" {
		add(m, "schema", str(k.Schema))
	}
	if len(k.Fields) > 0 {
		add(m, "fields", strMap(k.Fields))
	}
	if k.OnError != "" {
		add(m, "on_error", str(k.OnError))
	}
	if k.DeadLetterTopic != "" {
		add(m, "dead_letter_topic", str(k.DeadLetterTopic))
	}
	return m
}

func describeAndTag(m *yaml.Node, description string, tags map[string]string) {
	if description != "" {
		add(m, "description", str(description))
	}
	if len(tags) > 0 {
		add(m, "tags", strMap(tags))
	}
}

// fields writes join keys, features and request fields one flow mapping a line.
func fields(fs []definitions.Field) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, f := range fs {
		fm := flow(mapping())
		add(fm, "name", str(f.Name))
		add(fm, "type", str(f.Type.String()))
		if f.Description != "" {
			add(fm, "description", str(f.Description))
		}
		seq.Content = append(seq.Content, fm)
	}
	return seq
}

func strMap(m map[string]string) *yaml.Node {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := mapping()
	for _, k := range keys {
		add(n, k, str(m[k]))
	}
	return n
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode} }

func flow(n *yaml.Node) *yaml.Node { n.Style = yaml.FlowStyle; return n }

// str is a string scalar; the encoder quotes it where a plain scalar would read as another
// type ("true", "1.5", "null") or not parse.
func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}
