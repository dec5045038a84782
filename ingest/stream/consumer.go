// Package stream consumes Kafka stream sources (definitions.KafkaSource) into both stores
// through the same write path as pushed rows (ingest.Writer): each message is decoded and checked against the view
// (a bad message is dead-lettered or counted and skipped, never stopping the consumer), the
// latest row per entity is written to the online store through its stale-write guard, and
// the rows are appended to the view's Iceberg table. Consumer offsets are committed only after
// both stores hold the rows (at-least-once delivery). Each offline commit also records, in its
// snapshot summary, the next offset of every partition it covers; after a crash between the
// offline commit and the offset commit, redelivered messages below those offsets are skipped,
// so the offline table holds every row once. Any number of consumers (processes) may share a
// consumer group: each reads those offsets again for the partitions it is assigned.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// Defaults of Options.
const (
	DefaultCommitInterval = time.Second
	DefaultMaxPending     = 50_000
	DefaultSessionTimeout = 45 * time.Second
)

// Options tune a Consumer. The zero value is usable.
type Options struct {
	// CommitInterval is the longest rows wait online before their offline commit and the
	// offset commit that follows; default DefaultCommitInterval.
	CommitInterval time.Duration
	// MaxPending commits as soon as this many rows wait; default DefaultMaxPending.
	MaxPending int
	// SessionTimeout is the consumer group session timeout: how long after a consumer dies
	// its partitions move to another; default DefaultSessionTimeout.
	SessionTimeout time.Duration
	Logger         *slog.Logger
	Metrics        *Metrics
	// ClientOpts are added to the Kafka client's options.
	ClientOpts []kgo.Opt
	// BeforeCommit, when set, is called before each offline commit, with the consumer's lock
	// held: the place to check the registry for new definitions and hand them over with Update
	// (or to Abandon the consumer), so that no commit is made with definitions an apply has
	// replaced. It must not call back into the consumer but for Update and Abandon.
	BeforeCommit func(ctx context.Context)
	Now          func() time.Time
	Allocator    memory.Allocator
}

// Metrics are the stream consumers' Prometheus collectors.
type Metrics struct {
	messages      *prometheus.CounterVec // view, result
	lag           *prometheus.GaugeVec   // view, topic, partition
	eventToOnline *prometheus.HistogramVec
	commits       *prometheus.CounterVec // view
}

// NewMetrics registers the stream metrics on reg (nil: none registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "stream", Name: "messages_total",
			Help: "Messages consumed, by view and result: row (written), duplicate (already in both stores), dead_letter or skipped (could not be read).",
		}, []string{"view", "result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "quiver", Subsystem: "stream", Name: "consumer_lag",
			Help: "Messages in the partition after the last one consumed (high watermark − next offset), by view, topic and partition.",
		}, []string{"view", "topic", "partition"}),
		eventToOnline: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "quiver", Subsystem: "ingest", Name: "event_to_online_seconds",
			Help:    "Time from a row's event timestamp to its write to the online store, by path (push, stream).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"path"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quiver", Subsystem: "stream", Name: "offline_commits_total",
			Help: "Offline (Iceberg) commits of streamed rows, each followed by an offset commit, by view.",
		}, []string{"view"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.lag, m.eventToOnline, m.commits} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Consumer consumes one view's Kafka source.
type Consumer struct {
	view  *ingest.View
	src   *definitions.Source
	group string
	dec   *decoder
	w     *ingest.Writer
	opts  Options
	log   *slog.Logger

	mu          sync.Mutex
	marks       map[int32]int64 // next offset per partition held offline (loaded, then kept)
	pending     []arrow.RecordBatch
	pendRows    int
	pendMarks   map[int32]int64 // next offsets of rows in pending
	pendSince   time.Time
	uncommitted bool // offsets polled but not committed to Kafka
	// broken is set when an offline commit failed: no offset may be committed after it (the
	// rows would be lost offline), so the consumer stops and its messages come again.
	broken error

	// restart says the definitions changed during this Kafka client's run: the next client
	// consumes again what this one consumed but did not commit.
	restart bool

	upMu sync.Mutex
	next *update // definitions to switch to (Update), guarded by upMu

	abandoned atomic.Bool // Abandon was called
}

// Abandon tells the consumer that its view is gone (removed by an apply, with its table): when
// Run returns it commits nothing more, so the dropped table is not created again. What was
// consumed since the last commit is left to the consumer group's committed offsets.
func (c *Consumer) Abandon() { c.abandoned.Store(true) }

// update is a view and source to consume from the next poll on.
type update struct {
	view *ingest.View
	src  *definitions.Source
	dec  *decoder
}

// errReload ends one client's run so that Run starts another with new definitions.
var errReload = errors.New("definitions changed")

// New returns a consumer of view v's Kafka source src that writes through w.
func New(v *ingest.View, src *definitions.Source, w *ingest.Writer, opts Options) (*Consumer, error) {
	if src == nil || src.Kafka == nil {
		return nil, fmt.Errorf("view %q: its source is not a kafka source: %w", v.Name, definitions.ErrInvalid)
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = DefaultCommitInterval
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	if opts.Metrics == nil {
		m, err := NewMetrics(nil)
		if err != nil {
			return nil, err
		}
		opts.Metrics = m
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dec, err := newDecoder(v, src)
	if err != nil {
		return nil, err
	}
	c := &Consumer{w: w, opts: opts, pendMarks: map[int32]int64{}}
	c.use(update{view: v, src: src, dec: dec})
	return c, nil
}

// use makes the consumer read u's source for u's view.
func (c *Consumer) use(u update) {
	c.view, c.src, c.dec, c.group = u.view, u.src, u.dec, u.src.Kafka.ConsumerGroup(u.src.Name)
	c.log = c.opts.Logger.With("view", u.view.Name, "topic", u.src.Kafka.Topic, "group", c.group, "generation", u.view.Schema.Generation)
}

// Update gives the consumer new definitions of its view and source (after an apply): a new
// definition generation, other features or types, another topic. Unless they are the ones it
// consumes with, the consumer discards the rows it consumed but has not committed offline
// (their offsets are not committed either), and a new Kafka client consumes them again, from
// the group's committed offsets, with the new definitions: every offline commit after the
// consumer learns of an apply is made with the new definitions, writing the new generation's
// table. It is safe to call at any time, also from BeforeCommit; an error (a source that no
// longer decodes into the view) changes nothing.
func (c *Consumer) Update(v *ingest.View, src *definitions.Source) error {
	if src == nil || src.Kafka == nil {
		return fmt.Errorf("view %q: its source is not a kafka source: %w", v.Name, definitions.ErrInvalid)
	}
	dec, err := newDecoder(v, src)
	if err != nil {
		return err
	}
	c.upMu.Lock()
	defer c.upMu.Unlock()
	c.next = &update{view: v, src: src, dec: dec}
	return nil
}

// updateLocked returns the definitions given by Update if they differ from the ones the
// consumer uses (forgetting them otherwise). Callers hold mu.
func (c *Consumer) updateLocked() *update {
	c.upMu.Lock()
	defer c.upMu.Unlock()
	u := c.next
	if u != nil && reflect.DeepEqual(u.view, c.view) && reflect.DeepEqual(u.src, c.src) {
		c.next, u = nil, nil
	}
	return u
}

// reloadLocked discards what was consumed since the last commit and switches to u; the Kafka
// client's run then ends (restart), so that a new one consumes from the committed offsets.
// Callers hold mu.
func (c *Consumer) reloadLocked(u *update) {
	rows, old := c.pendRows, c.view.Schema.Generation
	c.dropLocked()
	c.upMu.Lock()
	c.next = nil
	c.upMu.Unlock()
	c.use(*u)
	c.restart = true
	c.log.Info("definitions changed: consuming with the new ones from the committed offsets", "previous_generation", old, "uncommitted_rows_consumed_again", rows)
}

// Run consumes until ctx is done or a fatal error. Before returning it commits what it has
// written online. Definitions given by Update are taken between polls: what was consumed
// before is committed with the old ones, then a new Kafka client consumes with the new ones.
func (c *Consumer) Run(ctx context.Context) error {
	for {
		if err := c.run(ctx); !errors.Is(err, errReload) {
			return err
		}
	}
}

// run consumes with one Kafka client until ctx is done, a fatal error, or new definitions
// (errReload, after committing).
func (c *Consumer) run(ctx context.Context) error {
	c.mu.Lock()
	c.restart = false
	c.mu.Unlock()
	snaps, err := c.w.Commits(ctx, c.view.Name, c.view.Schema.Generation)
	var marks map[int32]int64
	if err == nil {
		marks, err = offline.StreamOffsets(snaps, c.group, c.src.Kafka.Topic)
	}
	if err != nil {
		return fmt.Errorf("stream %q: read stored offsets: %w", c.view.Name, err)
	}
	c.marks = marks
	k := c.src.Kafka
	opts := []kgo.Opt{
		kgo.SeedBrokers(k.Brokers...),
		kgo.ConsumerGroup(c.group),
		// Several processes may consume one group: a rebalance moves only the partitions that
		// change hands (franz-go's default, named here), each flushed before it goes.
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.ConsumeTopics(k.Topic),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(250 * time.Millisecond),
		kgo.SessionTimeout(c.opts.SessionTimeout),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := c.flush(ctx, cl); err != nil && !errors.Is(err, errReload) {
				c.log.Error("commit before a rebalance failed; the messages will be consumed again", "err", err)
			}
		}),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) {
			c.drop()
		}),
		// Another consumer of the group may have owned these partitions and committed their
		// rows offline without committing the offsets (it was killed in between): what the
		// table records of them now, not what it recorded at this client's start, says which
		// redelivered messages it already holds. Called before their fetches begin.
		kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, assigned map[string][]int32) {
			c.loadMarks(ctx, assigned[k.Topic])
		}),
	}
	cl, err := kgo.NewClient(append(opts, c.opts.ClientOpts...)...)
	if err != nil {
		return fmt.Errorf("stream %q: kafka client: %w", c.view.Name, err)
	}
	defer cl.Close()
	c.log.Info("consuming", "brokers", k.Brokers, "stored_offsets", len(marks))
	for {
		// Wake at least every commit interval, so rows wait no longer for their commit when
		// no more messages come.
		pctx, cancel := context.WithTimeout(ctx, c.opts.CommitInterval)
		fetches := cl.PollRecords(pctx, 10_000)
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance() // else Close, which revokes, would wait for this poll forever
			break
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			c.log.Warn("fetch error", "partition", fe.Partition, "err", fe.Err)
		}
		err := c.process(ctx, cl, fetches)
		cl.AllowRebalance()
		if err != nil {
			return err // errReload included: process switched definitions
		}
		c.mu.Lock()
		if u := c.updateLocked(); u != nil {
			c.reloadLocked(u)
		}
		restart := c.restart
		c.mu.Unlock()
		if restart {
			return errReload
		}
	}
	if err := c.flush(ctx, cl); errors.Is(err, errReload) {
		return nil // new definitions: what was not committed is consumed again at the next start
	} else if err != nil {
		return fmt.Errorf("%w (the messages since the last commit will be consumed again)", err)
	}
	return nil
}

// loadMarks reads the next offsets the offline table records of partitions (just assigned to
// this consumer) into marks. When they cannot be read the consumer stops (broken): consuming
// without them could append rows another consumer of the group already committed.
func (c *Consumer) loadMarks(ctx context.Context, partitions []int32) {
	if len(partitions) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	snaps, err := c.w.Commits(ctx, c.view.Name, c.view.Schema.Generation)
	var stored map[int32]int64
	if err == nil {
		stored, err = offline.StreamOffsets(snaps, c.group, c.src.Kafka.Topic)
	}
	if err != nil {
		if c.broken == nil {
			c.broken = fmt.Errorf("stream %q: read the stored offsets of assigned partitions %v: %w", c.view.Name, partitions, err)
		}
		return
	}
	for _, p := range partitions {
		if o, ok := stored[p]; ok && o > c.marks[p] {
			c.log.Info("assigned a partition another consumer committed offline", "partition", p, "stored_offset", o, "known_offset", c.marks[p])
			c.marks[p] = o
		}
	}
}

// commitTimeout bounds one commit (offline, then the offsets), which runs to its end even
// after the consumer is told to stop.
const commitTimeout = 30 * time.Second

// process handles one poll's records and commits when due.
func (c *Consumer) process(ctx context.Context, cl *kgo.Client, fetches kgo.Fetches) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	b := ingest.Batch{Columns: map[string][]online.Value{}}
	var rows int
	var dead []*kgo.Record
	offsets := map[int32]int64{}
	m := c.opts.Metrics
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		for _, r := range p.Records {
			offsets[r.Partition] = r.Offset + 1
			c.uncommitted = true
			if r.Offset < c.marks[r.Partition] {
				m.messages.WithLabelValues(c.view.Name, "duplicate").Inc()
				continue
			}
			row, err := c.dec.decode(r.Value)
			if err != nil {
				if c.src.Kafka.OnError == definitions.OnErrorDeadLetr {
					dead = append(dead, &kgo.Record{Topic: c.src.Kafka.DeadLetterTopic, Key: r.Key, Value: r.Value, Headers: append(r.Headers,
						kgo.RecordHeader{Key: "quiver-error", Value: []byte(err.Error())},
						kgo.RecordHeader{Key: "quiver-source", Value: fmt.Appendf(nil, "%s/%d/%d", r.Topic, r.Partition, r.Offset)})})
					m.messages.WithLabelValues(c.view.Name, "dead_letter").Inc()
				} else {
					m.messages.WithLabelValues(c.view.Name, "skipped").Inc()
				}
				c.log.Warn("unreadable message", "partition", r.Partition, "offset", r.Offset, "err", err, "action", c.src.Kafka.OnError)
				continue
			}
			for i, col := range c.dec.cols {
				b.Columns[col.Name] = append(b.Columns[col.Name], row.values[i])
			}
			b.EventTS = append(b.EventTS, row.eventTS)
			b.CreatedTS = append(b.CreatedTS, row.createdTS)
			rows++
		}
		if n := len(p.Records); n > 0 {
			lag := p.HighWatermark - (p.Records[n-1].Offset + 1)
			m.lag.WithLabelValues(c.view.Name, p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(max(lag, 0)))
		}
	})
	if len(dead) > 0 {
		if err := cl.ProduceSync(ctx, dead...).FirstErr(); err != nil {
			return fmt.Errorf("stream %q: dead-letter %d messages to %s: %w", c.view.Name, len(dead), c.src.Kafka.DeadLetterTopic, err)
		}
	}
	if rows > 0 {
		rec, err := c.view.Build(b, c.opts.Allocator)
		if err != nil {
			return fmt.Errorf("stream %q: %w", c.view.Name, err) // decode checks every value: a bug
		}
		if c.view.Online != nil && c.w.Online != nil {
			if _, err := c.w.WriteOnline(ctx, c.view, rec); err != nil {
				rec.Release()
				return fmt.Errorf("stream %q: %w", c.view.Name, err)
			}
			ingest.ObserveEventToOnline(m.eventToOnline.WithLabelValues(ingest.PathStream), rec, len(c.view.Schema.JoinKeys), c.opts.Now())
		}
		m.messages.WithLabelValues(c.view.Name, "row").Add(float64(rows))
		if len(c.pending) == 0 {
			c.pendSince = time.Now()
		}
		c.pending = append(c.pending, rec)
		c.pendRows += rows
	}
	for p, o := range offsets {
		c.pendMarks[p] = max(c.pendMarks[p], o)
	}
	if c.pendRows >= c.opts.MaxPending || (c.uncommitted && time.Since(c.pendSince) >= c.opts.CommitInterval) || (c.uncommitted && len(c.pending) == 0) {
		return c.flushLocked(ctx, cl)
	}
	return nil
}

func (c *Consumer) flush(ctx context.Context, cl *kgo.Client) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked(ctx, cl)
}

// flushLocked commits pending rows offline (with the offsets they reach), then the consumed
// offsets to Kafka.
func (c *Consumer) flushLocked(ctx context.Context, cl *kgo.Client) error {
	if c.broken != nil {
		return c.broken
	}
	// A commit once begun is finished, even when the consumer is told to stop meanwhile: a
	// stop between the offline commit and the offset commit would otherwise end the process
	// with an error, and the next start would consume the committed rows again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if len(c.pending) > 0 && c.opts.BeforeCommit != nil {
		c.opts.BeforeCommit(ctx)
	}
	if c.abandoned.Load() {
		c.dropLocked()
		return nil
	}
	if u := c.updateLocked(); u != nil {
		c.reloadLocked(u)
		return errReload
	}
	if len(c.pending) > 0 {
		next := maps.Clone(c.marks)
		for p, o := range c.pendMarks {
			next[p] = max(next[p], o)
		}
		recs := c.pending
		c.pending, c.pendRows = nil, 0
		wr, err := c.w.Commit(ctx, c.view.Schema, recs, offline.StreamToken(c.group, c.src.Kafka.Topic, next))
		if err != nil {
			// The rows are online; they come again from Kafka, whose offsets stay put.
			c.broken = fmt.Errorf("stream %q: commit offline: %w", c.view.Name, err)
			return c.broken
		}
		for p, o := range c.pendMarks {
			c.marks[p] = max(c.marks[p], o)
		}
		c.opts.Metrics.commits.WithLabelValues(c.view.Name).Inc()
		c.log.Debug("committed streamed rows", "rows", wr.RowsWritten, "snapshot", wr.SnapshotID)
	}
	c.pendMarks = map[int32]int64{}
	if !c.uncommitted {
		return nil
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		return fmt.Errorf("stream %q: commit offsets: %w", c.view.Name, err)
	}
	c.uncommitted = false
	return nil
}

// drop forgets pending rows after partitions were lost: they are online, and Kafka will
// deliver them again to whoever owns the partitions now.
func (c *Consumer) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked()
}

func (c *Consumer) dropLocked() {
	for _, r := range c.pending {
		r.Release()
	}
	c.pending, c.pendRows, c.pendMarks, c.uncommitted = nil, 0, map[int32]int64{}, false
}
