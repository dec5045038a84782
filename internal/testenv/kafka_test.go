package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestStartKafka produces to and consumes from the real broker with franz-go: 1,000 records over
// three partitions, read back in a consumer group that commits its offsets.
func TestStartKafka(t *testing.T) {
	k := StartKafka(t)
	topic := k.NewTopic(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	const n = 1000
	prod := k.Client(t, kgo.DefaultProduceTopic(topic))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i%17)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	require.NoError(t, prod.ProduceSync(ctx, recs...).FirstErr())

	cons := k.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumerGroup("g-"+topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	seen := map[string]int{}
	partitions := map[int32]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "consumed %d of %d records", len(seen), n)
		require.Empty(t, fs.Errors())
		fs.EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			partitions[r.Partition] = true
		})
	}
	require.NoError(t, cons.CommitUncommittedOffsets(ctx))
	for i := range n {
		require.Equal(t, 1, seen[fmt.Sprintf("v%d", i)], "record v%d", i)
	}
	require.Len(t, partitions, 3, "17 keys hash to all three partitions")

	// The group's committed offsets add up to every record.
	offs := k.Client(t)
	committed, err := kadm.NewClient(offs).FetchOffsets(ctx, "g-"+topic)
	require.NoError(t, err)
	var total int64
	committed.Each(func(o kadm.OffsetResponse) {
		require.NoError(t, o.Err)
		total += o.At
	})
	require.Equal(t, int64(n), total)
}

// TestKafkaClusterIDNeverLooksLikeAnOption: kafka-storage format takes the id as an argument,
// and one starting with '-' failed the broker's start (1 in 64).
func TestKafkaClusterIDNeverLooksLikeAnOption(t *testing.T) {
	for range 10_000 {
		id := newKafkaClusterID()
		if len(id) != 22 || id[0] == '-' {
			t.Fatalf("cluster id %q", id)
		}
	}
}
