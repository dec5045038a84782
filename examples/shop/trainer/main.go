// Command shop-trainer trains the example churn model on CPU, with no Python: a perceptron
// with one ReLU hidden layer and a sigmoid output, fitted by full-batch gradient descent on a
// Quiver dataset snapshot. It is a Quiver training job:
//
//   - reads the snapshot from $QUIVER_DATASET_DIR (its manifest says which columns are
//     features, in the feature service's order; the label column is the "label" param);
//     features and the label must be int32, int64, float32, float64 or bool: any other column
//     (string, bytes, timestamp, array) is refused with an error naming it, never read as NaN;
//   - appends one JSON line per epoch to $QUIVER_METRICS_FILE (loss, accuracy, val_loss,
//     val_accuracy);
//   - writes model.onnx to $QUIVER_OUTPUT_DIR, with the input standardization folded into the
//     first layer and missing values (NaN) replaced by the training mean inside the graph,
//     so the served model takes raw feature values.
//
// Params ($QUIVER_PARAMS): epochs, hidden, lr, label.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/serving/model/onnx/onnxtest"
	"github.com/quiverfs/quiver/training"
)

type params struct {
	Epochs int     `json:"epochs"`
	Hidden int     `json:"hidden"`
	LR     float64 `json:"lr"`
	Label  string  `json:"label"`
}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "shop-trainer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	p := params{Epochs: 30, Hidden: 8, LR: 0.05, Label: "churned"}
	if s := os.Getenv(training.EnvParams); s != "" {
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return fmt.Errorf("%s: %w", training.EnvParams, err)
		}
	}
	dsDir, outDir := os.Getenv(training.EnvDatasetDir), os.Getenv(training.EnvOutputDir)
	if dsDir == "" || outDir == "" {
		return errors.New("run me with quiver train: $QUIVER_DATASET_DIR and $QUIVER_OUTPUT_DIR are not set")
	}
	if p.Epochs < 1 || p.Hidden < 1 || p.LR <= 0 {
		return fmt.Errorf("params: epochs and hidden must be >= 1 and lr > 0, got %+v", p)
	}
	x, y, names, err := load(ctx, dsDir, p.Label)
	if err != nil {
		return err
	}
	fmt.Printf("shop-trainer: %d rows, features %v, label %q, params %+v\n", len(y), names, p.Label, p)

	// Every fifth row is held out for validation (deterministic).
	var trX, vaX [][]float64
	var trY, vaY []float64
	for i := range y {
		if i%5 == 4 {
			vaX, vaY = append(vaX, x[i]), append(vaY, y[i])
		} else {
			trX, trY = append(trX, x[i]), append(trY, y[i])
		}
	}
	if len(trY) == 0 || len(vaY) == 0 {
		return fmt.Errorf("dataset has %d rows: too few to train and validate", len(y))
	}
	mean, std := standardize(trX)
	prep := func(rows [][]float64) [][]float64 {
		out := make([][]float64, len(rows))
		for i, r := range rows {
			out[i] = make([]float64, len(r))
			for j, v := range r {
				if math.IsNaN(v) {
					v = mean[j]
				}
				out[i][j] = (v - mean[j]) / std[j]
			}
		}
		return out
	}
	trZ, vaZ := prep(trX), prep(vaX)

	net := newNet(len(names), p.Hidden)
	metrics, err := os.OpenFile(os.Getenv(training.EnvMetricsFile), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	defer metrics.Close()
	var metricErr error // the first failed metric write
	logMetric := func(key string, v float64, step int) {
		b, _ := json.Marshal(map[string]any{"key": key, "value": v, "step": step})
		if _, err := metrics.Write(append(b, '\n')); err != nil && metricErr == nil {
			metricErr = fmt.Errorf("write metric: %w", err)
		}
	}
	for epoch := 1; epoch <= p.Epochs; epoch++ {
		loss, acc := net.step(trZ, trY, p.LR)
		vloss, vacc := net.evaluate(vaZ, vaY)
		logMetric("loss", loss, epoch)
		logMetric("accuracy", acc, epoch)
		logMetric("val_loss", vloss, epoch)
		logMetric("val_accuracy", vacc, epoch)
		if epoch == 1 || epoch%10 == 0 || epoch == p.Epochs {
			fmt.Printf("epoch %3d  loss %.4f  acc %.3f  val_loss %.4f  val_acc %.3f\n", epoch, loss, acc, vloss, vacc)
		}
	}

	if metricErr != nil {
		return metricErr
	}
	model := net.export(mean, std)
	if err := os.WriteFile(filepath.Join(outDir, training.ModelFile), model.Model(), 0o644); err != nil {
		return err
	}
	card, _ := json.MarshalIndent(map[string]any{"inputs": names, "input_name": "features", "output_name": "score", "label": p.Label, "params": p}, "", "  ")
	if err := os.WriteFile(filepath.Join(outDir, "model.json"), card, 0o644); err != nil {
		return err
	}
	fmt.Printf("shop-trainer: wrote %s\n", filepath.Join(outDir, training.ModelFile))
	return nil
}

// load reads the snapshot's feature columns (as float64, NaN for null) and the label.
func load(ctx context.Context, dir, label string) (x [][]float64, y []float64, names []string, err error) {
	m, _, err := training.ReadManifest(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, c := range m.Schema {
		if c.Role == "feature" {
			names = append(names, c.Name)
		}
	}
	rr, err := training.OpenFiles(ctx, dir, m)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rr.Release()
	li := rr.Schema().FieldIndices(label)
	if len(li) == 0 {
		return nil, nil, nil, fmt.Errorf("dataset has no label column %q (set the label param)", label)
	}
	if t := rr.Schema().Field(li[0]).Type; !trainable(t) {
		return nil, nil, nil, fmt.Errorf("label column %q is %s: shop-trainer takes an int32, int64, float32, float64 or bool label (1 or true is the positive class)", label, t)
	}
	fi := make([]int, len(names))
	for i, n := range names {
		fi[i] = rr.Schema().FieldIndices(n)[0]
		// Refused, not encoded: a category needs an encoding chosen for it (one-hot, an id,
		// an embedding), and serving must apply the same one — do it upstream.
		if t := rr.Schema().Field(fi[i]).Type; !trainable(t) {
			return nil, nil, nil, fmt.Errorf("feature column %q is %s: shop-trainer trains on int32, int64, float32, float64 or bool features only; "+
				"leave it out of the feature service, or encode it as a number upstream (e.g. an on-demand view: country == \"DE\" ? 1 : 0)", n, t)
		}
	}
	for rr.Next() {
		rec := rr.RecordBatch()
		for r := 0; r < int(rec.NumRows()); r++ {
			lv, ok := number(rec.Column(li[0]), r)
			if !ok || math.IsNaN(lv) {
				continue // unlabeled row
			}
			row := make([]float64, len(fi))
			for j, c := range fi {
				row[j], _ = number(rec.Column(c), r)
			}
			x, y = append(x, row), append(y, lv)
		}
	}
	return x, y, names, rr.Err()
}

// trainable reports whether number reads columns of type t.
func trainable(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT32, arrow.INT64, arrow.FLOAT32, arrow.FLOAT64, arrow.BOOL:
		return true
	}
	return false
}

// number reads a numeric or bool cell as float64; null is NaN. ok is false for a type it
// does not read (load refuses those columns first).
func number(col arrow.Array, i int) (float64, bool) {
	if col.IsNull(i) {
		return math.NaN(), true
	}
	switch a := col.(type) {
	case *array.Int32:
		return float64(a.Value(i)), true
	case *array.Int64:
		return float64(a.Value(i)), true
	case *array.Float32:
		return float64(a.Value(i)), true
	case *array.Float64:
		return a.Value(i), true
	case *array.Boolean:
		if a.Value(i) {
			return 1, true
		}
		return 0, true
	}
	return math.NaN(), false
}

func standardize(rows [][]float64) (mean, std []float64) {
	d := len(rows[0])
	mean, std = make([]float64, d), make([]float64, d)
	count := make([]float64, d)
	for _, r := range rows {
		for j, v := range r {
			if !math.IsNaN(v) {
				mean[j] += v
				count[j]++
			}
		}
	}
	for j := range mean {
		mean[j] /= math.Max(count[j], 1)
	}
	for _, r := range rows {
		for j, v := range r {
			if !math.IsNaN(v) {
				std[j] += (v - mean[j]) * (v - mean[j])
			}
		}
	}
	for j := range std {
		std[j] = math.Sqrt(std[j] / math.Max(count[j], 1))
		if std[j] < 1e-9 {
			std[j] = 1
		}
	}
	return mean, std
}

// net is y = sigmoid(relu(x·W1 + b1)·w2 + b2), trained on standardized inputs.
type net struct {
	in, hidden int
	w1         []float64 // in × hidden
	b1, w2     []float64
	b2         float64
}

func newNet(in, hidden int) *net {
	r := rand.New(rand.NewPCG(7, 11))
	n := &net{in: in, hidden: hidden, w1: make([]float64, in*hidden), b1: make([]float64, hidden), w2: make([]float64, hidden)}
	for i := range n.w1 {
		n.w1[i] = r.NormFloat64() * math.Sqrt(2/float64(in))
	}
	for i := range n.w2 {
		n.w2[i] = r.NormFloat64() * math.Sqrt(1/float64(hidden))
	}
	return n
}

func (n *net) forward(x []float64, h []float64) float64 {
	out := n.b2
	for k := 0; k < n.hidden; k++ {
		s := n.b1[k]
		for i, v := range x {
			s += v * n.w1[i*n.hidden+k]
		}
		h[k] = math.Max(s, 0)
		out += h[k] * n.w2[k]
	}
	return 1 / (1 + math.Exp(-out))
}

// step runs one epoch of full-batch gradient descent and returns the loss and accuracy
// before the update.
func (n *net) step(xs [][]float64, ys []float64, lr float64) (loss, acc float64) {
	gw1, gb1, gw2 := make([]float64, len(n.w1)), make([]float64, n.hidden), make([]float64, n.hidden)
	var gb2 float64
	h := make([]float64, n.hidden)
	for r, x := range xs {
		p := n.forward(x, h)
		loss += bce(p, ys[r])
		if (p >= 0.5) == (ys[r] >= 0.5) {
			acc++
		}
		d := p - ys[r] // dLoss/dlogit
		gb2 += d
		for k := 0; k < n.hidden; k++ {
			gw2[k] += d * h[k]
			if h[k] > 0 {
				dh := d * n.w2[k]
				gb1[k] += dh
				for i, v := range x {
					gw1[i*n.hidden+k] += dh * v
				}
			}
		}
	}
	m := float64(len(xs))
	for i := range n.w1 {
		n.w1[i] -= lr * gw1[i] / m
	}
	for k := range n.b1 {
		n.b1[k] -= lr * gb1[k] / m
		n.w2[k] -= lr * gw2[k] / m
	}
	n.b2 -= lr * gb2 / m
	return loss / m, acc / m
}

func (n *net) evaluate(xs [][]float64, ys []float64) (loss, acc float64) {
	h := make([]float64, n.hidden)
	for r, x := range xs {
		p := n.forward(x, h)
		loss += bce(p, ys[r])
		if (p >= 0.5) == (ys[r] >= 0.5) {
			acc++
		}
	}
	return loss / float64(len(xs)), acc / float64(len(xs))
}

func bce(p, y float64) float64 {
	p = math.Min(math.Max(p, 1e-7), 1-1e-7)
	return -(y*math.Log(p) + (1-y)*math.Log(1-p))
}

// export folds the standardization into the first layer, so the model takes raw features:
// (x-mean)/std · W1 + b1 = x · (W1/std) + (b1 - Σ mean·W1/std); missing inputs are replaced by
// the mean in the graph.
func (n *net) export(mean, std []float64) *onnxtest.MLP {
	m := &onnxtest.MLP{In: n.in, Hidden: n.hidden, W1: make([]float32, len(n.w1)), B1: make([]float32, n.hidden), W2: make([]float32, n.hidden), B2: float32(n.b2), Impute: make([]float32, n.in)}
	for k := 0; k < n.hidden; k++ {
		b := n.b1[k]
		for i := 0; i < n.in; i++ {
			w := n.w1[i*n.hidden+k] / std[i]
			m.W1[i*n.hidden+k] = float32(w)
			b -= mean[i] * w
		}
		m.B1[k] = float32(b)
		m.W2[k] = float32(n.w2[k])
	}
	for i := range mean {
		m.Impute[i] = float32(mean[i])
	}
	return m
}
