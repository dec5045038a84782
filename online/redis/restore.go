package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/quiverfs/quiver/online"
)

// writeRestore writes the rows of order (one pipeline's) whose key does not exist yet with no
// script and no read: one RESTORE a row, of a hash holding only the view's field, with the
// row's expiry for a view with TTL (ABSTTL: max(event + TTL, now) + grace, now from Redis's
// clock) and none for a view without. RESTORE creates the key or, when it exists, fails
// (BUSYKEY) without touching it, in one atomic step — the conditional write a first load needs,
// which no hash command of Redis 7.0 has: a key it creates is exactly what the script leaves
// in a key that did not exist (HSET of the row, then PEXPIREAT of the row's expiry, or none).
// Every other row — its key existed, or a later row of a key an earlier one created — is
// returned, in order, for the script. When the server refuses RESTORE for another reason (an
// ACL without @dangerous, a server that rejects the payload), the store stops trying it and
// the rows go to the script. It returns the rows done.
func (s *Store) writeRestore(ctx context.Context, v *online.View, w *writeRows, order []int32, c *callConsts) (int64, []int32, error) {
	var now int64
	if v.TTL != 0 {
		var err error
		if now, err = s.clock.now(ctx, s.client); err != nil {
			return 0, nil, s.wrap(ctx, fmt.Sprintf("write view %q: time", v.Name), err)
		}
	}
	grace := s.opts.ExpiryGrace.Milliseconds()
	// The payloads and expiries of all rows, in one arena: RDB type hash, one field, the field
	// and the row as RDB strings, then the RDB version and the CRC-64 of all that.
	size := 0
	for _, i := range order {
		size += 2 + 5 + len(c.field) + 5 + len(w.strs[3*i+1]) + 10 + 20
	}
	arena := make([]byte, 0, size)
	ends := make([]int, 2*len(order))
	for j, i := range order {
		from := len(arena)
		arena = append(arena, rdbTypeHash, 1)
		arena = appendRDBString(arena, c.field)
		arena = appendRDBString(arena, w.strs[3*i+1])
		arena = append(arena, rdbVersion, 0)
		arena = appendCRC64(arena, crc64Jones(arena[from:]))
		ends[2*j] = len(arena)
		if v.TTL == 0 {
			arena = append(arena, '0')
		} else {
			at, _ := strconv.ParseInt(w.strs[3*i+2], 10, 64)
			arena = strconv.AppendInt(arena, max(at, now)+grace, 10)
		}
		ends[2*j+1] = len(arena)
	}
	str := unsafe.String(unsafe.SliceData(arena), len(arena))
	strs := make([]string, 2*len(order))
	from := 0
	for k, e := range ends {
		strs[k] = str[from:e]
		from = e
	}
	absttl := "absttl"
	args := make([]any, 0, 5*len(order))
	pipe := s.client.Pipeline()
	for j, i := range order {
		at := len(args)
		args = append(args, "restore", &w.strs[3*i], &strs[2*j+1], &strs[2*j])
		if v.TTL != 0 {
			args = append(args, &absttl)
		}
		pipe.Do(ctx, args[at:len(args):len(args)]...)
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil && len(cmds) == 0 {
		return 0, nil, s.wrap(ctx, fmt.Sprintf("write view %q", v.Name), err)
	}
	var done int64
	var rest []int32
	for j, i := range order {
		switch err := cmds[j].Err(); {
		case err == nil:
			done++
		case goredis.HasErrorPrefix(err, "BUSYKEY"):
			rest = append(rest, i)
		case isRefused(err):
			s.noRestore.Store(true)
			rest = append(rest, i)
		default:
			return done, nil, s.wrap(ctx, fmt.Sprintf("write view %q", v.Name), err)
		}
	}
	return done, rest, nil
}

// isRefused tells the errors of a server that will not RESTORE our payloads at all.
func isRefused(err error) bool {
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return false
	}
	msg := reply.Error()
	return strings.HasPrefix(msg, "NOPERM") || strings.HasPrefix(msg, "ERR unknown command") ||
		strings.Contains(msg, "payload version or checksum")
}

// Redis's DUMP format for a hash, as RESTORE reads it (rdb.h, cluster.c): type RDB_TYPE_HASH
// (4, readable by every Redis since 2.0), then the payload's RDB version (9: Redis 5.0 and
// later accept it) and its CRC-64 (Jones, reflected, initial value 0) in little-endian order.
const (
	rdbTypeHash = 4
	rdbVersion  = 9
)

// appendRDBString appends s as an RDB string: its length (6 bits; 14 bits, big-endian; or a
// 0x80 byte and 32 bits, big-endian), then its bytes.
func appendRDBString(b []byte, s string) []byte {
	switch n := len(s); {
	case n < 1<<6:
		b = append(b, byte(n))
	case n < 1<<14:
		b = append(b, 0x40|byte(n>>8), byte(n))
	default:
		b = append(b, 0x80, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func appendCRC64(b []byte, crc uint64) []byte {
	for range 8 {
		b = append(b, byte(crc))
		crc >>= 8
	}
	return b
}

var crc64Table = func() (t [8][256]uint64) {
	const poly = 0x95ac9329ac4bc9b5 // Jones, reflected
	for i := range 256 {
		crc := uint64(i)
		for range 8 {
			if crc&1 == 1 {
				crc = crc>>1 ^ poly
			} else {
				crc >>= 1
			}
		}
		t[0][i] = crc
	}
	for i := range 256 {
		crc := t[0][i]
		for k := 1; k < 8; k++ {
			crc = t[0][crc&0xff] ^ crc>>8
			t[k][i] = crc
		}
	}
	return t
}()

// crc64Jones is Redis's crc64(0, b): slicing by 8.
func crc64Jones(b []byte) uint64 {
	var crc uint64
	t := &crc64Table
	for len(b) >= 8 {
		crc ^= uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		crc = t[7][crc&0xff] ^ t[6][crc>>8&0xff] ^ t[5][crc>>16&0xff] ^ t[4][crc>>24&0xff] ^
			t[3][crc>>32&0xff] ^ t[2][crc>>40&0xff] ^ t[1][crc>>48&0xff] ^ t[0][crc>>56]
		b = b[8:]
	}
	for _, c := range b {
		crc = t[0][byte(crc)^c] ^ crc>>8
	}
	return crc
}

// redisClock is Redis's clock as seen from here: the offset of its TIME from the local clock,
// read again after a minute, so expiries are computed from the server's time (as the script
// computes them) without a round trip per write.
type redisClock struct {
	mu     sync.Mutex
	offset time.Duration
	synced time.Time
}

func (c *redisClock) now(ctx context.Context, client goredis.UniversalClient) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.synced.IsZero() || time.Since(c.synced) > time.Minute {
		before := time.Now()
		t, err := client.Time(ctx).Result()
		if err != nil {
			return 0, err
		}
		after := time.Now()
		c.offset = t.Sub(before.Add(after.Sub(before) / 2))
		c.synced = after
	}
	return time.Now().Add(c.offset).UnixMilli(), nil
}
