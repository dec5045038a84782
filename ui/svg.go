package ui

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"
)

// Charts and graphs are SVG written here, on the server: they need no script, they are part
// of the page's HTML (so tests read them like any element), and they stay readable without
// colour — series differ by dash pattern and marker shape as well as by hue, and every node
// of a graph is labelled with its kind.

// xy is one point of a series.
type xy struct{ X, Y float64 }

// series is one line of a chart.
type series struct {
	Label  string
	URL    string
	Points []xy
}

// seriesStyle is how series i is drawn: a hue, a dash pattern and a marker shape.
type seriesStyle struct {
	Color, Dash, Marker string
}

var styles = []seriesStyle{
	{"#1f4e9c", "", "circle"},
	{"#b3400a", "8 4", "square"},
	{"#2d7a2d", "2 3", "triangle"},
	{"#7a2d7a", "12 4 2 4", "diamond"},
	{"#555555", "4 4", "cross"},
}

func styleOf(i int) seriesStyle { return styles[i%len(styles)] }

// marker draws a marker shape centred on (x, y).
func marker(b *strings.Builder, shape, color string, x, y float64) {
	switch shape {
	case "square":
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="7" height="7" fill="%s"/>`, x-3.5, y-3.5, color)
	case "triangle":
		fmt.Fprintf(b, `<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fZ" fill="%s"/>`, x, y-4.5, x+4.5, y+3.5, x-4.5, y+3.5, color)
	case "diamond":
		fmt.Fprintf(b, `<path d="M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ" fill="%s"/>`, x, y-5, x+5, y, x, y+5, x-5, y, color)
	case "cross":
		fmt.Fprintf(b, `<path d="M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f" stroke="%s" stroke-width="2"/>`, x-4, y-4, x+4, y+4, x-4, y+4, x+4, y-4, color)
	default:
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`, x, y, color)
	}
}

// niceTicks returns about n round tick values covering [lo, hi]: at least two, finite and
// increasing, whatever lo and hi are — an empty, reversed, infinite or NaN range, or one
// wider than the largest float64 (its width is worked out in halves, which cannot overflow),
// is first made a finite range (finiteRange); when no round step fits it (a range of a few
// ulps, or of subnormals), the ticks are its two ends.
func niceTicks(lo, hi float64, n int) []float64 {
	lo, hi = finiteRange(lo, hi)
	n = max(n, 1)
	raw := (hi/2 - lo/2) / float64(n) * 2
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	// Log10 may be off by an ulp at a power of ten: mag <= raw < 10*mag, so a step fits.
	if mag*10 <= raw {
		mag *= 10
	} else if mag > raw {
		mag /= 10
	}
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	if !(step > 0) || math.IsInf(step, 0) {
		return []float64{lo, hi}
	}
	var out []float64
	first := math.Ceil(lo / step)
	for k := 0; k <= 2*n+2; k++ {
		v := (first + float64(k)) * step
		if math.IsInf(v, 0) || v > hi+step*1e-9 {
			break
		}
		if len(out) > 0 && v <= out[len(out)-1] {
			continue // first+k rounds to first+k-1 where step is tiny next to lo
		}
		out = append(out, v)
	}
	if len(out) < 2 {
		return []float64{lo, hi}
	}
	return out
}

// finiteRange makes [lo, hi] a finite range with lo < hi: NaN ends take the other end's
// value (0 when both are NaN), infinite ends are clamped to ±math.MaxFloat64, reversed ends
// are swapped, and an empty range is widened by 1, or by an eighth of its magnitude where 1
// would not change it.
func finiteRange(lo, hi float64) (float64, float64) {
	switch {
	case math.IsNaN(lo) && math.IsNaN(hi):
		lo, hi = 0, 0
	case math.IsNaN(lo):
		lo = hi
	case math.IsNaN(hi):
		hi = lo
	}
	clamp := func(v float64) float64 { return math.Max(-math.MaxFloat64, math.Min(math.MaxFloat64, v)) }
	lo, hi = clamp(lo), clamp(hi)
	if hi < lo {
		lo, hi = hi, lo
	}
	if hi == lo {
		d := math.Max(1, math.Abs(lo)/8)
		if lo+d > math.MaxFloat64 {
			return lo - d, lo
		}
		return lo, lo + d
	}
	return lo, hi
}

// frac is where v lies in [lo, hi], from 0 to 1, computed in halves so that a range wider
// than the largest float64 does not overflow; 0.5 where the range is too small to divide by.
func frac(v, lo, hi float64) float64 {
	den := hi/2 - lo/2
	if !(den > 0) || math.IsInf(den, 0) {
		return 0.5
	}
	f := (v/2 - lo/2) / den
	if math.IsNaN(f) {
		return 0.5
	}
	return math.Max(0, math.Min(1, f))
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// lineChart draws series over a shared x (step) and y (value) axis. Points whose x or y is
// NaN or infinite are left out; every coordinate written is a number.
func lineChart(title, xLabel string, ss []series) template.HTML {
	const w, h, ml, mr, mt, mb = 900.0, 360.0, 70.0, 20.0, 20.0, 46.0
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.Points {
			if !finite(p.X) {
				continue
			}
			minX, maxX = math.Min(minX, p.X), math.Max(maxX, p.X)
			if finite(p.Y) {
				minY, maxY = math.Min(minY, p.Y), math.Max(maxY, p.Y)
			}
		}
	}
	var b strings.Builder
	id := "chart-" + strconv.FormatUint(uint64(hashString(title)), 36)
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s-t" data-series-count="%d" xmlns="http://www.w3.org/2000/svg">`, w, h, id, len(ss))
	fmt.Fprintf(&b, `<title id="%s-t">%s</title>`, id, html.EscapeString(title))
	if math.IsInf(minX, 1) {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">no points</text></svg>`, w/2, h/2)
		return template.HTML(b.String())
	}
	minX, maxX = finiteRange(minX, maxX)
	if math.IsInf(minY, 1) {
		minY, maxY = 0, 1
	}
	if maxY == minY {
		minY, maxY = finiteRange(minY-0.5, maxY+0.5)
	}
	yt := niceTicks(minY, maxY, 5)
	minY, maxY = math.Min(minY, yt[0]), math.Max(maxY, yt[len(yt)-1])
	px := func(x float64) float64 { return ml + frac(x, minX, maxX)*(w-ml-mr) }
	py := func(y float64) float64 { return h - mb - frac(y, minY, maxY)*(h-mt-mb) }
	b.WriteString(`<g class="axes" font-size="12" fill="currentColor">`)
	for _, v := range yt {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, ml, w-mr, py(v), py(v))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, ml-6, py(v)+4, formatFloat(v))
	}
	for _, v := range niceTicks(minX, maxX, 8) {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="tick"/>`, px(v), px(v), h-mb, h-mb+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, px(v), h-mb+18, formatFloat(v))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, ml, w-mr, h-mb, h-mb)
	fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, ml, ml, mt, h-mb)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, (ml+w-mr)/2, h-6, html.EscapeString(xLabel))
	b.WriteString(`</g>`)
	for i, s := range ss {
		st := styleOf(i)
		fmt.Fprintf(&b, `<g class="series" data-series="%s" data-points="%d"><title>%s</title>`, html.EscapeString(s.Label), len(s.Points), html.EscapeString(s.Label))
		var d strings.Builder
		for _, p := range s.Points {
			if !finite(p.X) || !finite(p.Y) {
				continue
			}
			op := "L"
			if d.Len() == 0 {
				op = "M"
			}
			fmt.Fprintf(&d, "%s%.1f %.1f", op, px(p.X), py(p.Y))
		}
		dash := ""
		if st.Dash != "" {
			dash = ` stroke-dasharray="` + st.Dash + `"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`, d.String(), st.Color, dash)
		// A few markers along the line, offset per series so that they do not hide each other.
		n := len(s.Points)
		for k := 0; k < 6 && n > 0; k++ {
			j := min(n-1, (n-1)*k/5+(i*n/37)%max(1, n/6))
			p := s.Points[j]
			if finite(p.X) && finite(p.Y) {
				marker(&b, st.Marker, st.Color, px(p.X), py(p.Y))
			}
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// legendSwatch is the small SVG of series i's line and marker, for a legend.
func legendSwatch(i int) template.HTML {
	st := styleOf(i)
	var b strings.Builder
	dash := ""
	if st.Dash != "" {
		dash = ` stroke-dasharray="` + st.Dash + `"`
	}
	fmt.Fprintf(&b, `<svg class="swatch" viewBox="0 0 40 12" width="40" height="12" aria-hidden="true"><line x1="0" x2="40" y1="6" y2="6" stroke="%s" stroke-width="2"%s/>`, st.Color, dash)
	marker(&b, st.Marker, st.Color, 20, 6)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// sparkline draws a histogram's counts as bars.
func sparkline(counts []int64, label string) template.HTML {
	if len(counts) == 0 {
		return ""
	}
	var peak int64 = 1
	for _, c := range counts {
		peak = max(peak, c)
	}
	const w, h = 120.0, 28.0
	bw := w / float64(len(counts))
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="%s">`, w, h, w, h, html.EscapeString(label))
	for i, c := range counts {
		bh := float64(c) / float64(peak) * (h - 2)
		if c > 0 {
			bh = math.Max(bh, 1)
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, float64(i)*bw+0.5, h-bh, math.Max(bw-1, 0.5), bh)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// gnode is one node of a lineage graph.
type gnode struct {
	ID    string
	Kind  string // shown on the node: "model version", "run", ...
	Label string
	Sub   string // a second line: a status, a version, a snapshot id
	URL   string
	Col   int
}

type gedge struct{ From, To string }

// graphSVG lays the nodes out in columns (left to right, by Col) and draws the edges as
// arrows.
func graphSVG(title string, nodes []gnode, edges []gedge) template.HTML {
	const nw, nh, colGap, rowGap, pad = 190.0, 54.0, 60.0, 18.0, 12.0
	cols := map[int][]int{}
	maxCol, maxRows := 0, 0
	for i, n := range nodes {
		cols[n.Col] = append(cols[n.Col], i)
		maxCol = max(maxCol, n.Col)
		maxRows = max(maxRows, len(cols[n.Col]))
	}
	w := pad*2 + float64(maxCol+1)*nw + float64(maxCol)*colGap
	h := pad*2 + float64(maxRows)*nh + float64(max(maxRows-1, 0))*rowGap
	pos := map[string][2]float64{}
	for c, idx := range cols {
		colH := float64(len(idx))*nh + float64(len(idx)-1)*rowGap
		y0 := (h - colH) / 2
		for r, i := range idx {
			pos[nodes[i].ID] = [2]float64{pad + float64(c)*(nw+colGap), y0 + float64(r)*(nh+rowGap)}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="graph" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="graph-t" xmlns="http://www.w3.org/2000/svg">`, w, h)
	fmt.Fprintf(&b, `<title id="graph-t">%s</title>`, html.EscapeString(title))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="currentColor"/></marker></defs>`)
	for _, e := range edges {
		a, okA := pos[e.From]
		z, okZ := pos[e.To]
		if !okA || !okZ {
			continue
		}
		x1, y1, x2, y2 := a[0]+nw, a[1]+nh/2, z[0], z[1]+nh/2
		c1, c2 := (x1+x2)/2, (x1+x2)/2
		if z[0] == a[0] { // same column (an on-demand view reading a feature view): an arc on the right
			x2 = z[0] + nw
			c1, c2 = x1+colGap*0.6, x2+colGap*0.6
		}
		fmt.Fprintf(&b, `<path class="edge" data-from="%s" data-to="%s" d="M%.1f %.1fC%.1f %.1f %.1f %.1f %.1f %.1f" fill="none" stroke="currentColor" marker-end="url(#arrow)"/>`,
			html.EscapeString(e.From), html.EscapeString(e.To), x1, y1, c1, y1, c2, y2, x2, y2)
	}
	for _, n := range nodes {
		p := pos[n.ID]
		if n.URL != "" {
			fmt.Fprintf(&b, `<a href="%s">`, html.EscapeString(n.URL))
		}
		fmt.Fprintf(&b, `<g class="node kind-%s" data-kind="%s" data-name="%s" transform="translate(%.1f %.1f)">`,
			strings.ReplaceAll(n.Kind, " ", "-"), html.EscapeString(n.Kind), html.EscapeString(n.Label), p[0], p[1])
		fmt.Fprintf(&b, `<title>%s %s %s</title>`, html.EscapeString(n.Kind), html.EscapeString(n.Label), html.EscapeString(n.Sub))
		fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" rx="6"/>`, nw, nh)
		fmt.Fprintf(&b, `<text x="10" y="17" class="node-kind">%s</text>`, html.EscapeString(n.Kind))
		fmt.Fprintf(&b, `<text x="10" y="33" class="node-label">%s</text>`, html.EscapeString(truncate(n.Label, 24)))
		if n.Sub != "" {
			fmt.Fprintf(&b, `<text x="10" y="48" class="node-sub">%s</text>`, html.EscapeString(truncate(n.Sub, 28)))
		}
		b.WriteString(`</g>`)
		if n.URL != "" {
			b.WriteString(`</a>`)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func hashString(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
