package offline

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The commit-token vocabulary: the snapshot summary keys with which every Quiver commit to a
// view's table records what it holds. A write whose token the table already records is not
// committed again (a re-run, a replay after a crash), and the tokens tell how a table was
// written (quiver status). This file owns them; the writers (materialization runs, pushes
// through the log, direct pushes, streams) record them and the readers ask here.
const (
	// SummaryView names the view of every commit.
	SummaryView = "quiver.view"
	// SummaryRunID, SummaryIntervalStart and SummaryIntervalEnd are a materialization run's
	// commit of [start, end) (Writer.WriteInterval).
	SummaryRunID         = "quiver.run-id"
	SummaryIntervalStart = "quiver.interval-start"
	SummaryIntervalEnd   = "quiver.interval-end"
	// SummaryPushLog and SummaryPushSeq are a push log's commit of its batches through a
	// sequence number (each log id numbers its batches from 1).
	SummaryPushLog = "quiver.push-log"
	SummaryPushSeq = "quiver.push-seq"
	// SummaryPushBatch is a direct push's commit of one batch (quiver push without a server).
	SummaryPushBatch = "quiver.push-batch"
	// SummaryStreamOffsetsPrefix + group + "/" + topic holds a stream's next offset per
	// partition after the commit, as a JSON object of partition → offset.
	SummaryStreamOffsetsPrefix = "quiver.stream-offsets."
)

// Token is the summary a commit records (Appender.Append's props).
type Token map[string]string

// PushLogToken is the token of a push log's commit through sequence number seq.
func PushLogToken(logID string, seq uint64) Token {
	return Token{SummaryPushLog: logID, SummaryPushSeq: strconv.FormatUint(seq, 10)}
}

// PushBatchToken is the token of a direct push of one batch.
func PushBatchToken(batchID string) Token { return Token{SummaryPushBatch: batchID} }

// StreamToken is the token of a stream's commit: the consumer group's next offset per
// partition of topic.
func StreamToken(group, topic string, next map[int32]int64) Token {
	m := make(map[string]int64, len(next))
	for p, o := range next {
		m[strconv.Itoa(int(p))] = o
	}
	raw, _ := json.Marshal(m) // keys sorted; a map of ints always marshals
	return Token{streamKey(group, topic): string(raw)}
}

func streamKey(group, topic string) string { return SummaryStreamOffsetsPrefix + group + "/" + topic }

// PushLogSeq is the last sequence number of push log logID that snaps (a table's snapshots)
// record; 0 when none.
func PushLogSeq(snaps []Snapshot, logID string) uint64 {
	var last uint64
	for _, s := range snaps {
		if s.Summary[SummaryPushLog] != logID {
			continue
		}
		if n, err := strconv.ParseUint(s.Summary[SummaryPushSeq], 10, 64); err == nil {
			last = max(last, n)
		}
	}
	return last
}

// PushBatchCommit is the snapshot that committed direct push batchID, if any.
func PushBatchCommit(snaps []Snapshot, batchID string) (Snapshot, bool) {
	for _, s := range snaps {
		if s.Summary[SummaryPushBatch] == batchID {
			return s, true
		}
	}
	return Snapshot{}, false
}

// StreamOffsets is the next offset per partition of topic that snaps record for a consumer
// group: what the table holds of the stream. Several consumers of one group commit to one
// table, each recording the offsets it knows of (older ones for partitions another consumer
// owns): the greatest any commit records is the one that counts.
func StreamOffsets(snaps []Snapshot, group, topic string) (map[int32]int64, error) {
	out := map[int32]int64{}
	key := streamKey(group, topic)
	for _, s := range snaps { // oldest first; each holds the whole map
		raw, ok := s.Summary[key]
		if !ok {
			continue
		}
		var m map[string]int64
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, fmt.Errorf("snapshot %d: %s: %w", s.ID, key, err)
		}
		for p, o := range m {
			n, err := strconv.ParseInt(p, 10, 32)
			if err == nil {
				out[int32(n)] = max(out[int32(n)], o)
			}
		}
	}
	return out, nil
}

// Pushed reports whether the snapshot committed pushed rows (through a log or directly).
func (s Snapshot) Pushed() bool {
	_, log := s.Summary[SummaryPushLog]
	_, batch := s.Summary[SummaryPushBatch]
	return log || batch
}

// Streamed reports whether the snapshot committed streamed rows.
func (s Snapshot) Streamed() bool {
	for k := range s.Summary {
		if strings.HasPrefix(k, SummaryStreamOffsetsPrefix) {
			return true
		}
	}
	return false
}
