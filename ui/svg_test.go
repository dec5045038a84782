package ui

import (
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
