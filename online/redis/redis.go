// Package redis is the Redis online store, for a single node and for Redis Cluster alike,
// through go-redis's UniversalClient. An entity's rows of all views keyed by the same entities
// live in one hash, so a read of N entities × V views is one pipelined round trip of N HMGETs.
// The key and value format is documented in docs/online-format.md.
package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quiverfs/quiver/internal/redact"
	"github.com/quiverfs/quiver/online"
)

// Options tune a Store. The zero Options are valid: every zero field takes its default.
type Options struct {
	// Now is the clock TTLs are measured against when reading. Default time.Now.
	Now func() time.Time
	// ExpiryGrace is how long past the end of its TTL (or past its write, whichever is later)
	// Redis keeps an entity's hash, so that reads see old rows as OUTSIDE_MAX_AGE before they
	// disappear (NOT_FOUND). Default 24h. See docs/online-format.md.
	ExpiryGrace time.Duration
	// WriteBatch is the number of rows sent in one pipeline by Write. Default 2048.
	WriteBatch int
	// RowsPerScript is the number of rows one EVALSHA call writes (rows of one cluster slot on
	// a cluster). Default 128.
	RowsPerScript int
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ExpiryGrace <= 0 {
		o.ExpiryGrace = 24 * time.Hour
	}
	if o.WriteBatch <= 0 {
		o.WriteBatch = 2048
	}
	if o.RowsPerScript <= 0 {
		o.RowsPerScript = 128
	}
	return o
}

// Store is the Redis online store. It is safe for concurrent use.
type Store struct {
	client  goredis.UniversalClient
	addr    string // for error messages
	cluster bool
	opts    Options

	coalesce coalescer // read coalescing (coalesce.go)

	script *goredis.Script // the write script; writeScript (tests compare it with others)

	firstLoads firstLoads // per view field: whether writes try the scriptless first load (write.go)

	noRestore atomic.Bool // the server refused RESTORE: first loads go to the script (restore.go)
	clock     redisClock  // Redis's clock, for the expiries RESTORE sets (restore.go)
}

var _ online.Store = (*Store)(nil)

// New returns a store over client, which it owns from now on: Close closes it. The client
// should have ContextTimeoutEnabled set so reads honour the caller's deadline (Open does).
func New(client goredis.UniversalClient, opts Options) *Store {
	s := &Store{client: client, opts: opts.withDefaults(), script: script}
	switch c := client.(type) {
	case *goredis.ClusterClient:
		s.cluster = true
		s.addr = strings.Join(c.Options().Addrs, ",")
	case *goredis.Client:
		s.addr = c.Options().Addr
	default:
		s.addr = "redis"
	}
	return s
}

// Open connects to the store a quiver.yaml `online:` URL names: redis://[user:password@]host:port[/db]
// (also rediss://) for a single node, or redis-cluster://[user:password@]host1:port1,host2:port2
// for a cluster (seed nodes). It checks the connection with PING.
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	var client goredis.UniversalClient
	switch {
	case strings.HasPrefix(rawURL, "redis://"), strings.HasPrefix(rawURL, "rediss://"):
		o, err := goredis.ParseURL(rawURL)
		if err != nil {
			// The parser's error may quote the URL whole, password and all.
			return nil, fmt.Errorf("%w: %w", redact.ParseError("open redis online store", rawURL, err), online.ErrInvalidArgument)
		}
		o.ContextTimeoutEnabled = true
		o.Protocol = protocol(o.Protocol)
		client = goredis.NewClient(o)
	case strings.HasPrefix(rawURL, "redis-cluster://"):
		o, err := parseClusterURL(rawURL)
		if err != nil {
			return nil, err
		}
		client = goredis.NewClusterClient(o)
	default:
		return nil, fmt.Errorf("open redis online store %s: want redis://, rediss:// or redis-cluster://: %w", redact.URL(rawURL), online.ErrInvalidArgument)
	}
	s := New(client, opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, s.wrap(ctx, "ping", err)
	}
	return s, nil
}

func parseClusterURL(rawURL string) (*goredis.ClusterOptions, error) {
	rest := strings.TrimPrefix(rawURL, "redis-cluster://")
	o := &goredis.ClusterOptions{ContextTimeoutEnabled: true, Protocol: protocol(0)}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, pass, hasPass := strings.Cut(rest[:at], ":")
		if hasPass {
			o.Username, o.Password = user, pass
		} else {
			o.Password = user
		}
		rest = rest[at+1:]
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	for _, a := range strings.Split(rest, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.Addrs = append(o.Addrs, a)
		}
	}
	if len(o.Addrs) == 0 {
		return nil, fmt.Errorf("open redis online store %s: no cluster nodes: %w", redact.URL(rawURL), online.ErrInvalidArgument)
	}
	return o, nil
}

// Close closes the client.
func (s *Store) Close() error {
	if err := s.client.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("close redis %s: %w", s.addr, err)
	}
	return nil
}

// Client returns the underlying client, for tests and tools.
func (s *Store) Client() goredis.UniversalClient { return s.client }

// wrap names the address and classifies err: server error replies stay as they are, a
// cancelled ctx is context.Canceled (the caller left; the store is fine), anything else
// (connection refused, timeouts, a closed client) is ErrUnavailable; an expired ctx is
// reported too, so errors.Is(err, context.DeadlineExceeded) holds.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("redis %s: %s: %w", s.addr, op, online.ErrClosed)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("redis %s: %s: %w", s.addr, op, context.Canceled)
	}
	var reply goredis.Error
	if errors.As(err, &reply) && !isConnError(reply) {
		return fmt.Errorf("redis %s: %s: %w", s.addr, op, err)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("redis %s: %s: %w: %w (%w)", s.addr, op, online.ErrUnavailable, cerr, err)
	}
	return fmt.Errorf("redis %s: %s: %w: %w", s.addr, op, online.ErrUnavailable, err)
}

// isConnError tells the reply errors that mean the cluster or node cannot serve now, or
// refused our credentials (WRONGPASS, NOAUTH: a store we cannot use is unavailable to us).
func isConnError(err goredis.Error) bool {
	msg := err.Error()
	for _, p := range []string{"CLUSTERDOWN", "LOADING", "TRYAGAIN", "MASTERDOWN", "BUSY", "WRONGPASS", "NOAUTH", "ERR AUTH", "ERR invalid password"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// hashKey is the Redis key of an entity of a project: q:<project>:{<entity key>}. The entity
// key, which starts with a non-'}' version byte, is the hash tag.
func appendHashKey(b []byte, project string, key online.EntityKey) []byte {
	b = append(b, "q:"...)
	b = append(b, project...)
	b = append(b, ":{"...)
	b = append(b, key...)
	return append(b, '}')
}

// field is the hash field of a view: its name, with its definition generation after the
// first (online.StorageName).
func field(v *online.View) string { return v.StorageName() }

// Read implements online.Reader with one pipeline: one HMGET per distinct (row, entity key),
// asking for the fields of every requested view keyed by that entity.
func (s *Store) Read(ctx context.Context, req online.ReadRequest) (*online.ReadResult, error) {
	b, err := online.NewResultBuilder(&req, s.opts.Now())
	if err != nil {
		return nil, err
	}
	rows, nviews := len(req.Views[0].Keys), len(req.Views)
	if rows == 0 {
		return b.Result(), nil
	}
	// slot[vi*rows+r] = command index<<8 | field position, for view read vi of row r.
	slot := make([]int32, nviews*rows)
	keys := make([]string, 0, rows)
	fields := make([]string, 0, rows*nviews) // the fields of command c are fields[ends[c-1]:ends[c]]
	ends := make([]int, 0, rows)
	keyBuf := make([]byte, 0, 64)
	for r := range rows {
		done := uint64(0) // bitmask of views already placed, for up to 64 views
		for vi := range nviews {
			if vi < 64 && done&(1<<vi) != 0 {
				continue
			}
			key := req.Views[vi].Keys[r]
			ci, first := int32(len(keys)), len(fields)
			for vj := vi; vj < nviews; vj++ {
				if vj < 64 && done&(1<<vj) != 0 {
					continue
				}
				vr := &req.Views[vj]
				if vr.Keys[r] != key || vr.View.Project != req.Views[vi].View.Project {
					continue
				}
				if vj < 64 {
					done |= 1 << vj
				}
				slot[vj*rows+r] = ci<<8 | int32(len(fields)-first)
				fields = append(fields, field(vr.View))
				if len(fields)-first == 255 {
					break
				}
			}
			keyBuf = appendHashKey(keyBuf[:0], req.Views[vi].View.Project, key)
			keys = append(keys, string(keyBuf))
			ends = append(ends, len(fields))
		}
	}
	cmds, err := s.hmget(ctx, keys, fields, ends)
	if err != nil {
		if len(keys) == 1 {
			return nil, s.wrap(ctx, "read 1 key", err)
		}
		return nil, s.wrap(ctx, fmt.Sprintf("read %d keys", len(keys)), err)
	}
	for vi := range nviews {
		for r := range rows {
			sl := slot[vi*rows+r]
			vals := cmds[sl>>8].Val()
			pos := int(sl & 0xff)
			if pos >= len(vals) {
				return nil, fmt.Errorf("redis %s: read: HMGET returned %d values: %w", s.addr, len(vals), online.ErrCorrupt)
			}
			switch data := vals[pos].(type) {
			case nil:
			case string:
				if err := b.Set(vi, r, data); err != nil {
					return nil, fmt.Errorf("redis %s: read: %w", s.addr, err)
				}
			default:
				return nil, fmt.Errorf("redis %s: read: unexpected HMGET value %T: %w", s.addr, data, online.ErrCorrupt)
			}
		}
	}
	return b.Result(), nil
}

// DeleteEntities implements online.Writer with one pipelined HDEL per entity key (a hash
// left without fields disappears with its last one).
func (s *Store) DeleteEntities(ctx context.Context, v *online.View, keys []online.EntityKey) (int64, error) {
	var n int64
	var keyBuf []byte
	const batch = 1000
	for start := 0; start < len(keys); start += batch {
		chunk := keys[start:min(start+batch, len(keys))]
		pipe := s.client.Pipeline()
		cmds := make([]*goredis.IntCmd, len(chunk))
		for i, k := range chunk {
			if k == "" {
				return n, fmt.Errorf("delete entities of view %q: empty entity key: %w", v.Name, online.ErrInvalidArgument)
			}
			keyBuf = appendHashKey(keyBuf[:0], v.Project, k)
			cmds[i] = pipe.HDel(ctx, string(keyBuf), field(v))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return n, s.wrap(ctx, fmt.Sprintf("delete %d entities of view %q", len(chunk), v.Name), err)
		}
		for _, c := range cmds {
			n += c.Val()
		}
	}
	return n, nil
}

// DeleteView implements online.Writer: it scans every master for the hashes of the view's
// project and deletes the view's fields of generations 1 to v.Generation from them. It costs
// a scan of the project's keys.
func (s *Store) DeleteView(ctx context.Context, v *online.View) error {
	fields := v.StorageNamesThrough()
	err := s.forEachProjectKey(ctx, v.Project, func(ctx context.Context, pipe goredis.Pipeliner, keys []string) error {
		for _, k := range keys {
			pipe.HDel(ctx, k, fields...)
		}
		_, err := pipe.Exec(ctx)
		return err
	})
	if err != nil {
		return s.wrap(ctx, fmt.Sprintf("delete view %q", v.Name), err)
	}
	return nil
}

// CountView implements online.Counter: one scan of the project's keys, and a pipelined
// HEXISTS per key and generation.
func (s *Store) CountView(ctx context.Context, v *online.View) (int64, error) {
	fields := v.StorageNamesThrough()
	var mu sync.Mutex
	var n int64
	err := s.forEachProjectKey(ctx, v.Project, func(ctx context.Context, pipe goredis.Pipeliner, keys []string) error {
		cmds := make([]*goredis.BoolCmd, 0, len(keys)*len(fields))
		for _, k := range keys {
			for _, f := range fields {
				cmds = append(cmds, pipe.HExists(ctx, k, f))
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		var found int64
		for _, c := range cmds {
			if c.Val() {
				found++
			}
		}
		mu.Lock()
		n += found
		mu.Unlock()
		return nil
	})
	if err != nil {
		return 0, s.wrap(ctx, fmt.Sprintf("count view %q", v.Name), err)
	}
	return n, nil
}

// forEachProjectKey scans every master for the hashes of project, calling fn with a fresh
// pipeline of the master and each batch of keys found.
func (s *Store) forEachProjectKey(ctx context.Context, project string, fn func(ctx context.Context, pipe goredis.Pipeliner, keys []string) error) error {
	pattern := "q:" + globEscape(project) + ":{*"
	scan := func(ctx context.Context, c *goredis.Client) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				if err := fn(ctx, c.Pipeline(), keys); err != nil {
					return err
				}
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	switch c := s.client.(type) {
	case *goredis.ClusterClient:
		return c.ForEachMaster(ctx, scan)
	case *goredis.Client:
		return scan(ctx, c)
	default:
		return fmt.Errorf("unsupported client %T: %w", c, online.ErrInvalidArgument)
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var _ online.Counter = (*Store)(nil)
