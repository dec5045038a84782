package stream

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/quiverfs/quiver/definitions"
)

// Lag is the consumer lag of a kafka source's group per partition: the end offset minus the
// committed offset (the whole partition when the group has committed nothing).
func Lag(ctx context.Context, src *definitions.Source, opts ...kgo.Opt) (map[int32]int64, error) {
	k := src.Kafka
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...)}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, k.Topic)
	if err != nil {
		return nil, fmt.Errorf("kafka %s: end offsets: %w", k.Topic, err)
	}
	if err := ends.Error(); err != nil {
		return nil, fmt.Errorf("kafka %s: end offsets: %w", k.Topic, err)
	}
	committed, err := adm.FetchOffsets(ctx, k.ConsumerGroup(src.Name))
	if err != nil {
		return nil, fmt.Errorf("kafka group %s: committed offsets: %w", k.ConsumerGroup(src.Name), err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic != k.Topic {
			return
		}
		lag := o.Offset
		if c, ok := committed.Lookup(k.Topic, o.Partition); ok && c.Err == nil && c.At >= 0 {
			lag = o.Offset - c.At
		}
		out[o.Partition] = max(lag, 0)
	})
	return out, nil
}
