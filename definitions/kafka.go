package definitions

import (
	"encoding/json"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KafkaSource is a stream source: messages of a Kafka topic, consumed by `quiver stream` and
// written through the same path as pushed rows. Each message value is one row: a JSON object
// (format json) or an Avro record (format avro, with Schema) whose fields hold the view's join
// keys and features (renamed by Fields) and the event time in the source's timestamp_field.
type KafkaSource struct {
	Brokers []string `json:"brokers"`
	Topic   string   `json:"topic"`
	// Group is the consumer group; empty means "quiver.<source name>".
	Group string `json:"group,omitempty"`
	// Format is json (the default) or avro.
	Format string `json:"format,omitempty"`
	// Schema is the Avro schema (JSON) of the message values, for format avro.
	Schema string `json:"schema,omitempty"`
	// Fields maps a view column (join key or feature) to the message field holding it, where
	// the names differ.
	Fields map[string]string `json:"fields,omitempty"`
	// OnError is what a message that cannot be read becomes: skip (counted and skipped, the
	// default) or dead_letter (copied to DeadLetterTopic, and counted).
	OnError         string `json:"on_error,omitempty"`
	DeadLetterTopic string `json:"dead_letter_topic,omitempty"`
	Pos             Pos    `json:"-"`
}

// Kafka formats and error policies.
const (
	KafkaJSON       = "json"
	KafkaAvro       = "avro"
	OnErrorSkip     = "skip"
	OnErrorDeadLetr = "dead_letter"
)

// ConsumerGroup is the group the source's consumer joins.
func (k *KafkaSource) ConsumerGroup(source string) string {
	if k.Group != "" {
		return k.Group
	}
	return "quiver." + source
}

// Field is the message field holding a view column.
func (k *KafkaSource) Field(column string) string {
	if f, ok := k.Fields[column]; ok {
		return f
	}
	return column
}

func (d *decoder) kafkaSource(n *yaml.Node) *KafkaSource {
	k := &KafkaSource{Pos: d.pos(n)}
	for _, kv := range d.Mapping(n, "kafka source", []string{"brokers", "topic", "group", "format", "schema", "fields", "on_error", "dead_letter_topic"}) {
		switch kv.Key {
		case "brokers":
			k.Brokers = d.StrList(kv, "kafka source")
			for i, b := range k.Brokers {
				if _, port, ok := strings.Cut(b, ":"); !ok || port == "" {
					at := kv.Value
					if i < len(kv.Value.Content) {
						at = kv.Value.Content[i]
					}
					d.Errorf(at, "kafka broker %q must be HOST:PORT", b)
				}
			}
		case "topic":
			k.Topic = d.Str(kv, "kafka source")
		case "group":
			k.Group = d.Str(kv, "kafka source")
		case "format":
			k.Format = d.Str(kv, "kafka source")
			if k.Format != KafkaJSON && k.Format != KafkaAvro && k.Format != "" {
				d.Errorf(kv.Value, "kafka format %q: valid formats: json, avro", k.Format)
			}
		case "schema":
			k.Schema = d.Str(kv, "kafka source")
			if k.Schema != "" && !json.Valid([]byte(k.Schema)) {
				d.Errorf(kv.Value, "kafka schema must be an Avro schema written as JSON")
			}
		case "fields":
			k.Fields = d.StrMap(kv, "kafka source")
		case "on_error":
			k.OnError = d.Str(kv, "kafka source")
			if k.OnError != OnErrorSkip && k.OnError != OnErrorDeadLetr && k.OnError != "" {
				d.Errorf(kv.Value, "kafka on_error %q: valid: skip (count and skip the message), dead_letter (copy it to dead_letter_topic)", k.OnError)
			}
		case "dead_letter_topic":
			k.DeadLetterTopic = d.Str(kv, "kafka source")
		}
	}
	if n.Kind != yaml.MappingNode {
		return k
	}
	if len(k.Brokers) == 0 {
		d.Errorf(n, "kafka source needs brokers: a list of HOST:PORT")
	}
	if k.Topic == "" {
		d.Errorf(n, "kafka source needs a topic")
	}
	if k.Format == KafkaAvro && k.Schema == "" {
		d.Errorf(n, "kafka source with format avro needs schema: the Avro schema of the message values, as JSON")
	}
	if k.Format != KafkaAvro && k.Schema != "" {
		d.Errorf(n, "kafka schema is only for format avro")
	}
	if k.OnError == OnErrorDeadLetr && k.DeadLetterTopic == "" {
		d.Errorf(n, "kafka on_error: dead_letter needs dead_letter_topic")
	}
	if k.DeadLetterTopic != "" && k.OnError != OnErrorDeadLetr {
		d.Errorf(n, "kafka dead_letter_topic is used only with on_error: dead_letter")
	}
	return k
}
