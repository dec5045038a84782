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
	for _, kv := range d.mapping(n, "kafka source", []string{"brokers", "topic", "group", "format", "schema", "fields", "on_error", "dead_letter_topic"}) {
		switch kv.key {
		case "brokers":
			k.Brokers = d.strList(kv, "kafka source")
			for i, b := range k.Brokers {
				if _, port, ok := strings.Cut(b, ":"); !ok || port == "" {
					at := kv.value
					if i < len(kv.value.Content) {
						at = kv.value.Content[i]
					}
					d.errorf(at, "kafka broker %q must be HOST:PORT", b)
				}
			}
		case "topic":
			k.Topic = d.str(kv, "kafka source")
		case "group":
			k.Group = d.str(kv, "kafka source")
		case "format":
			k.Format = d.str(kv, "kafka source")
			if k.Format != KafkaJSON && k.Format != KafkaAvro && k.Format != "" {
				d.errorf(kv.value, "kafka format %q: valid formats: json, avro", k.Format)
			}
		case "schema":
			k.Schema = d.str(kv, "kafka source")
			if k.Schema != "" && !json.Valid([]byte(k.Schema)) {
				d.errorf(kv.value, "kafka schema must be an Avro schema written as JSON")
			}
		case "fields":
			k.Fields = d.strMap(kv, "kafka source")
		case "on_error":
			k.OnError = d.str(kv, "kafka source")
			if k.OnError != OnErrorSkip && k.OnError != OnErrorDeadLetr && k.OnError != "" {
				d.errorf(kv.value, "kafka on_error %q: valid: skip (count and skip the message), dead_letter (copy it to dead_letter_topic)", k.OnError)
			}
		case "dead_letter_topic":
			k.DeadLetterTopic = d.str(kv, "kafka source")
		}
	}
	if n.Kind != yaml.MappingNode {
		return k
	}
	if len(k.Brokers) == 0 {
		d.errorf(n, "kafka source needs brokers: a list of HOST:PORT")
	}
	if k.Topic == "" {
		d.errorf(n, "kafka source needs a topic")
	}
	if k.Format == KafkaAvro && k.Schema == "" {
		d.errorf(n, "kafka source with format avro needs schema: the Avro schema of the message values, as JSON")
	}
	if k.Format != KafkaAvro && k.Schema != "" {
		d.errorf(n, "kafka schema is only for format avro")
	}
	if k.OnError == OnErrorDeadLetr && k.DeadLetterTopic == "" {
		d.errorf(n, "kafka on_error: dead_letter needs dead_letter_topic")
	}
	if k.DeadLetterTopic != "" && k.OnError != OnErrorDeadLetr {
		d.errorf(n, "kafka dead_letter_topic is used only with on_error: dead_letter")
	}
	return k
}
