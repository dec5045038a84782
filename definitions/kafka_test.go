package definitions

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPushAndKafkaSources(t *testing.T) {
	good := `sources:
  - name: live
    push: {}
    timestamp_field: ts
  - name: clicks
    kafka:
      brokers: [localhost:9092]
      topic: clicks
      fields: { user_id: uid }
      on_error: dead_letter
      dead_letter_topic: clicks-dlq
    timestamp_field: ts
`
	f, err := Parse("s.yaml", []byte(good))
	require.NoError(t, err)
	require.Len(t, f.Objects, 2)
	live, clicks := f.Objects[0].(*Source), f.Objects[1].(*Source)
	require.Equal(t, "push", live.SourceType())
	require.True(t, live.IsPush())
	require.Equal(t, "kafka", clicks.SourceType())
	require.True(t, clicks.IsPush())
	require.Equal(t, "quiver.clicks", clicks.Kafka.ConsumerGroup("clicks"))
	require.Equal(t, "uid", clicks.Kafka.Field("user_id"))
	require.Equal(t, "clicks", clicks.Kafka.Field("clicks"))

	bad := []struct{ yaml, want string }{
		{"sources:\n  - name: a\n    push: { x: 1 }\n    timestamp_field: ts\n", `s.yaml:3:13: unknown key "x" in push source`},
		{"sources:\n  - name: a\n    push: true\n    timestamp_field: ts\n", `s.yaml:3:11: push source must be an empty mapping`},
		{"sources:\n  - name: a\n    kafka: { topic: t }\n    timestamp_field: ts\n", `s.yaml:3:12: kafka source needs brokers`},
		{"sources:\n  - name: a\n    kafka: { brokers: [h], topic: t }\n    timestamp_field: ts\n", `s.yaml:3:24: kafka broker "h" must be HOST:PORT`},
		{"sources:\n  - name: a\n    kafka: { brokers: [h:1], topic: t, format: xml }\n    timestamp_field: ts\n", `kafka format "xml": valid formats: json, avro`},
		{"sources:\n  - name: a\n    kafka: { brokers: [h:1], topic: t, format: avro }\n    timestamp_field: ts\n", `format avro needs schema`},
		{"sources:\n  - name: a\n    kafka: { brokers: [h:1], topic: t, on_error: dead_letter }\n    timestamp_field: ts\n", `on_error: dead_letter needs dead_letter_topic`},
		{"sources:\n  - name: a\n    kafka: { brokers: [h:1], topic: t, on_error: retry }\n    timestamp_field: ts\n", `kafka on_error "retry": valid: skip`},
		{"sources:\n  - name: a\n    kafka: { brokers: [h:1], topic: t }\n    push: {}\n    timestamp_field: ts\n", `a source has exactly one of parquet, iceberg, trino, push or kafka`},
	}
	for _, c := range bad {
		_, err := Parse("s.yaml", []byte(c.yaml))
		require.Error(t, err, c.yaml)
		require.Contains(t, err.Error(), c.want)
	}
}
