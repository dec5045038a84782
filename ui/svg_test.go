package ui

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 1, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{0, 99999, []float64{0, 20000, 40000, 60000, 80000}},
		{3, 3, []float64{3, 3.2, 3.4, 3.6, 3.8, 4}},
		{-7, 13, []float64{-5, 0, 5, 10}},
	} {
		got := niceTicks(tc.lo, tc.hi, 5)
		require.Len(t, got, len(tc.want), "%v", got)
		require.InDeltaSlice(t, tc.want, got, 1e-9)
	}
}

func TestLineChartEscapesAndSkipsNaN(t *testing.T) {
	nan := 0.0
	nan /= nan
	svg := string(lineChart(`<loss> & "acc"`, "step", []series{
		{Label: `<b>run</b>`, Points: []xy{{0, 1}, {1, nan}, {2, 0.5}}},
		{Label: "empty"},
	}))
	require.NotContains(t, svg, "<b>")
	require.Contains(t, svg, "&lt;loss&gt; &amp; &#34;acc&#34;")
	require.Equal(t, 2, strings.Count(svg, `<g class="series"`))
	require.NotContains(t, svg, "NaN")
	require.Contains(t, string(lineChart("none", "step", nil)), "no points")
}

func TestGraphLaysOutColumns(t *testing.T) {
	svg := string(graphSVG("g", []gnode{
		{ID: "a", Kind: "model version", Label: "m v1", URL: "/m?x=1&y=2", Col: 0},
		{ID: "b", Kind: "feature view", Label: "v1", Col: 1},
		{ID: "c", Kind: "feature view", Label: "v2", Col: 1},
	}, []gedge{{"a", "b"}, {"a", "c"}, {"a", "missing"}}))
	require.Equal(t, 3, strings.Count(svg, `<g class="node`))
	require.Equal(t, 2, strings.Count(svg, `class="edge"`), "an edge to an unknown node is not drawn")
	require.Contains(t, svg, `href="/m?x=1&amp;y=2"`)
}

// TestNiceTicksExtremes: ranges that overflow, underflow or are not numbers give finite,
// increasing ticks (at least two) instead of none.
func TestNiceTicksExtremes(t *testing.T) {
	for _, tc := range [][2]float64{
		{-1e308, 1e308}, {-math.MaxFloat64, math.MaxFloat64}, {math.MaxFloat64, math.MaxFloat64},
		{0, 5e-324}, {5e-324, 5e-324}, {1e16, 1e16 + 2}, {math.Inf(-1), math.Inf(1)}, {math.NaN(), 1},
		{3, 3}, {1, 0},
	} {
		checkTicks(t, tc[0], tc[1], niceTicks(tc[0], tc[1], 5))
	}
}

func checkTicks(t *testing.T, lo, hi float64, ticks []float64) {
	t.Helper()
	require.GreaterOrEqual(t, len(ticks), 2, "ticks of [%g, %g]: %v", lo, hi, ticks)
	require.LessOrEqual(t, len(ticks), 12, "ticks of [%g, %g]: %v", lo, hi, ticks)
	for i, v := range ticks {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "ticks of [%g, %g]: %v", lo, hi, ticks)
		if i > 0 {
			require.Greater(t, v, ticks[i-1], "ticks of [%g, %g] increase: %v", lo, hi, ticks)
		}
	}
}

// FuzzLineChart draws any two series: the chart never panics, and every coordinate it writes
// is a number.
func FuzzLineChart(f *testing.F) {
	f.Add(0.0, 1.0, 2.0, 1e308, -1e308, math.NaN())
	f.Add(1e16, 1e16, 1e16, 1e16+2, 5e-324, 0.0)
	f.Add(math.Inf(1), math.Inf(-1), math.MaxFloat64, -math.MaxFloat64, 1.0, 2.0)
	f.Fuzz(func(t *testing.T, x1, y1, x2, y2, y3, y4 float64) {
		svg := string(lineChart("fuzz", "step", []series{
			{Label: "a", Points: []xy{{x1, y1}, {x2, y2}}},
			{Label: "b", Points: []xy{{x1, y3}, {x2, y4}, {x1, y1}}},
		}))
		require.True(t, strings.HasSuffix(svg, "</svg>"))
		requireFiniteSVG(t, svg)
		lo, hi := math.Min(y1, y2), math.Max(y3, y4)
		checkTicks(t, lo, hi, niceTicks(lo, hi, 5))
	})
}
