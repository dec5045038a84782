package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
)

// refillDefs adds a push view (TTL 1 day) and a Kafka view to the scaffold's repo. The Kafka
// view's rows come from quiver push here: no broker is needed to write or refill it.
const refillDefs = `sources:
  - name: live_events
    push: {}
    timestamp_field: event_ts
    created_timestamp_field: created_ts
  - name: clicks_stream
    kafka:
      brokers: [127.0.0.1:9]
      topic: clicks
      group: quiver-test
    timestamp_field: event_ts

feature_views:
  - name: user_live
    entities: [user]
    source: live_events
    ttl: 1d
    online: true
    features:
      - { name: clicks, type: int64 }
      - { name: page, type: string }
  - name: user_stream
    entities: [user]
    source: clicks_stream
    online: true
    features:
      - { name: clicks, type: int64 }
      - { name: page, type: string }
`

// onlineValue is get-online of one int64 feature for one user: its value and status.
func onlineValue(t *testing.T, env map[string]string, dir, feature string, user int) (string, string) {
	t.Helper()
	r := quiver(t, env, "-C", dir, "-o", "json", "get-online", "--feature", feature, "--entity", "user_id="+strconv.Itoa(user))
	require.Equal(t, exitOK, r.code, r.stderr)
	var out struct {
		Features []struct {
			Values struct {
				Int64 struct {
					Val []string `json:"val"`
				} `json:"int64_values"`
			} `json:"values"`
			Statuses []string `json:"statuses"`
		} `json:"features"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
	f := out.Features[0]
	v := ""
	if len(f.Values.Int64.Val) > 0 {
		v = f.Values.Int64.Val[0]
	}
	return v, f.Statuses[0]
}

// TestOnlineOnlyRefillsPushAndKafkaViews is issue 22 item 6: materialize --online-only, the
// runbook's answer to a lost Redis, skipped push and Kafka views and refused them when
// named. Push and Kafka views' rows go online and offline; Redis is flushed (the online store
// is lost); --online-only, with no view named and then with them named, brings every value
// back from the offline tables: the latest row per entity (an older push does not win), and
// a value older than the view's TTL served as OUTSIDE_MAX_AGE, never as fresh.
func TestOnlineOnlyRefillsPushAndKafkaViews(t *testing.T) {
	redis := testenv.StartRedis(t)
	env := map[string]string{"QUIVER_ONLINE": "redis://" + redis.Addr + "/0"}
	dir := filepath.Join(t.TempDir(), "shop")
	require.Equal(t, exitOK, quiver(t, nil, "init", dir, "--project", "shop").code)
	writeFile(t, filepath.Join(dir, "features", "live.yaml"), refillDefs)
	require.NoError(t, os.Remove(filepath.Join(dir, "features", "churn.yaml")))
	r := quiver(t, env, "-C", dir, "apply")
	require.Equal(t, exitOK, r.code, r.stderr)
	now := time.Now().UTC().Truncate(time.Second)
	r = quiver(t, env, "-C", dir, "materialize", "--start", now.Add(-40*24*time.Hour).Format(time.RFC3339), "--end", now.Add(time.Hour).Format(time.RFC3339))
	require.Equal(t, exitOK, r.code, r.stderr)

	ts := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	pushes := map[string][]string{
		"user_live": {
			"user_id,event_ts,clicks,page\n1," + ts(time.Hour) + ",10,home\n2," + ts(48*time.Hour) + ",20,cart\n",
			"user_id,event_ts,clicks,page\n1," + ts(3*time.Hour) + ",999,older\n", // older: must not win
		},
		"user_stream": {"user_id,event_ts,clicks,page\n1," + ts(time.Minute) + ",31,a\n3," + ts(2*time.Hour) + ",33,b\n"},
	}
	for view, files := range pushes {
		for i, body := range files {
			csv := filepath.Join(dir, view+strconv.Itoa(i)+".csv")
			writeFile(t, csv, body)
			r := quiver(t, env, "-C", dir, "push", view, csv)
			require.Equal(t, exitOK, r.code, r.stderr)
		}
	}
	type want struct {
		feature string
		user    int
		value   string
		status  string
	}
	wants := []want{
		{"user_live:clicks", 1, "10", "PRESENT"},
		{"user_live:clicks", 2, "20", "OUTSIDE_MAX_AGE"}, // 48h old, TTL 1d
		{"user_stream:clicks", 1, "31", "PRESENT"},
		{"user_stream:clicks", 3, "33", "PRESENT"},
	}
	stats, _ := onlineValue(t, env, dir, "user_stats:clicks_7d", 7)
	require.NotEmpty(t, stats)
	check := func(when string) {
		t.Helper()
		for _, w := range wants {
			v, st := onlineValue(t, env, dir, w.feature, w.user)
			require.Equal(t, []string{w.value, w.status}, []string{v, st}, "%s: %s of user %d", when, w.feature, w.user)
		}
		v, _ := onlineValue(t, env, dir, "user_stats:clicks_7d", 7)
		require.Equal(t, stats, v, "%s: the batch view", when)
	}
	check("before the loss")

	lose := func() {
		t.Helper()
		c := goredis.NewClient(&goredis.Options{Addr: redis.Addr})
		defer c.Close()
		require.NoError(t, c.FlushAll(context.Background()).Err())
		_, st := onlineValue(t, env, dir, "user_live:clicks", 1)
		require.Equal(t, "NOT_FOUND", st)
	}
	for _, args := range [][]string{
		{"materialize", "--online-only"},
		{"materialize", "--online-only", "user_live", "user_stream", "user_stats"},
	} {
		lose()
		r := quiver(t, env, append([]string{"-C", dir, "-o", "json"}, args...)...)
		require.Equal(t, exitOK, r.code, "%v: %s", args, r.stderr)
		var out struct {
			Views []struct {
				View       string `json:"view"`
				OnlineRows int64  `json:"online_rows"`
				Skipped    string `json:"skipped"`
			} `json:"views"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), r.stdout)
		rows := map[string]int64{}
		for _, v := range out.Views {
			require.Empty(t, v.Skipped, "%v: %s skipped", args, v.View)
			rows[v.View] = v.OnlineRows
		}
		require.Equal(t, map[string]int64{"user_stats": 200, "user_live": 2, "user_stream": 2}, rows, "%v", args)
		check("after " + args[len(args)-1])
	}
}
