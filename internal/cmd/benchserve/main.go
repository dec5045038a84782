// Command benchserve prepares the serving benchmarks of scripts/bench.sh: a feature repo with
// 3 views × 10 float64 features (feature service bench30) and a 30-input MLP (model mlp30),
// the rows of -entities entities written to Redis, and ghz request files.
//
//	go run ./internal/cmd/benchserve -dir /tmp/repo -redis 127.0.0.1:6379
//	quiver -C /tmp/repo apply
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/benchdata"
	"github.com/quiverfs/quiver/online"
	onlineredis "github.com/quiverfs/quiver/online/redis"
	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
)

const (
	views    = 3
	features = 10
)

func featuresYAML() string { return benchdata.ServingYAML(views, features) }

func main() {
	dir := flag.String("dir", "", "feature repo directory to create")
	redisAddr := flag.String("redis", "", "host:port of the Redis to write the rows to")
	project := flag.String("project", "bench", "project name")
	entities := flag.Int("entities", 10000, "entities to store")
	flag.Parse()
	if *dir == "" || *redisAddr == "" {
		fmt.Fprintln(os.Stderr, "benchserve: -dir and -redis are required")
		os.Exit(2)
	}
	if err := run(context.Background(), *dir, *redisAddr, *project, *entities); err != nil {
		fmt.Fprintln(os.Stderr, "benchserve:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, redisAddr, project string, entities int) error {
	yaml := featuresYAML()
	if err := os.MkdirAll(filepath.Join(dir, "features"), 0o755); err != nil {
		return err
	}
	files := map[string][]byte{
		"quiver.yaml":         fmt.Appendf(nil, "project: %s\nonline: redis://%s/0\ndefinitions: [features]\n", project, redisAddr),
		"features/bench.yaml": []byte(yaml),
		"mlp30.onnx":          onnxtest.NewMLP(views*features, 32, 3).Model(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	f, err := definitions.Parse("bench.yaml", []byte(yaml))
	if err != nil {
		return err
	}
	repo, err := definitions.NewRepo(f.Objects)
	if err != nil {
		return err
	}
	store, err := onlineredis.Open(ctx, "redis://"+redisAddr, onlineredis.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	ents := []definitions.Entity{*repo.Entity("user")}
	now := time.Now()
	for v := range views {
		view, err := online.NewView(project, repo.FeatureView(fmt.Sprintf("view_%d", v)), ents)
		if err != nil {
			return err
		}
		rows := make([]online.Row, entities)
		for u := range entities {
			k, err := view.Key(online.Int64(int64(u)))
			if err != nil {
				return err
			}
			vals := make([]online.Value, features)
			for f := range vals {
				vals[f] = online.Float64(float64(u%97) / 97 * float64(f+1))
			}
			rows[u] = online.Row{Key: k, EventTS: now.Add(-time.Hour), Values: vals}
		}
		if err := store.Write(ctx, view, rows); err != nil {
			return err
		}
	}
	// ghz request files: arrays of requests, which ghz sends round robin.
	rng := rand.New(rand.NewPCG(1, 2))
	entityList := func(n int) map[string]any {
		vals := make([]any, n)
		for i := range vals {
			vals[i] = map[string]any{"int64_val": strconv.Itoa(rng.IntN(entities))}
		}
		return map[string]any{"user_id": map[string]any{"val": vals}}
	}
	reqs := func(n, rows int, pred bool) []any {
		out := make([]any, n)
		for i := range out {
			if pred {
				out[i] = map[string]any{"model": map[string]any{"name": "mlp30"}, "entities": entityList(rows)}
			} else {
				out[i] = map[string]any{"feature_service": "bench30", "entities": entityList(rows)}
			}
		}
		return out
	}
	for name, v := range map[string][]any{
		"get1.json":     reqs(1000, 1, false),
		"get100.json":   reqs(200, 100, false),
		"predict1.json": reqs(1000, 1, true),
	} {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
