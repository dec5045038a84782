package feast

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/quiverfs/quiver/definitions"
	core "github.com/quiverfs/quiver/definitions/feast/internal/proto/feast/core"
)

// onDemandViews converts on-demand feature views whose transformation translates to CEL and
// reports the others with the Python they run.
func (c *converter) onDemandViews() {
	for _, v := range c.reg.GetOnDemandFeatureViews() {
		s := v.GetSpec()
		if s.GetProject() != c.project {
			continue
		}
		c.onDemandView(s)
	}
}

func (c *converter) onDemandView(s *core.OnDemandFeatureViewSpec) {
	const kind = "on_demand_feature_view"
	name := s.GetName()
	udf := s.GetFeatureTransformation().GetUserDefinedFunction()
	body, mode := udf.GetBodyText(), s.GetMode()
	if old := s.GetUserDefinedFunction(); udf == nil && old != nil { //nolint:staticcheck // registries written before FeatureTransformationV2 hold it here
		body = old.GetBodyText()
	}
	if mode == "" {
		mode = udf.GetMode()
	}
	skip := func(field, why, suggestion string) {
		if body != "" {
			suggestion = strings.TrimSpace(suggestion + "\nFeast's Python:\n" + body)
		}
		c.report(kind, name, field, Skipped, why, suggestion)
	}
	switch {
	case len(s.GetAggregations()) > 0:
		skip("aggregations", "aggregations in an on-demand view have no Quiver equivalent", "declare an aggregation view (docs/aggregations.md)")
		return
	case s.GetDisabled():
		skip("disabled", "the on-demand view is disabled in Feast", "")
		return
	case s.GetFeatureTransformation().GetSubstraitTransformation() != nil:
		skip("feature_transformation", "a Substrait (Ibis) transformation: Quiver computes on-demand features with CEL expressions", "write each feature's CEL expression by hand (docs/definitions.md, on_demand_feature_views)")
		return
	case body == "":
		skip("feature_transformation", "the on-demand view has no transformation source text in the registry", "")
		return
	}
	// Inputs: request sources and converted feature views, by the names pandas sees.
	var inputs []string
	cols := map[string]pyColumn{}
	ambiguous := map[string]bool{}
	addCol := func(col string, pc pyColumn) {
		if _, dup := cols[col]; dup {
			ambiguous[col] = true
		}
		cols[col] = pc
	}
	names := make([]string, 0, len(s.GetSources()))
	for k := range s.GetSources() {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, key := range names {
		src := s.GetSources()[key]
		switch {
		case src.GetRequestDataSource() != nil:
			rs := c.requestSource(src.GetRequestDataSource())
			if rs == nil {
				skip("sources", fmt.Sprintf("its request source %q was not converted", src.GetRequestDataSource().GetName()), "")
				return
			}
			inputs = append(inputs, rs.Name)
			for _, f := range rs.Fields {
				addCol(f.Name, pyColumn{Input: rs.Name, Field: f.Name, Type: f.Type})
			}
		default:
			p := src.GetFeatureViewProjection()
			viewName := p.GetFeatureViewName()
			if fv := src.GetFeatureView(); fv != nil {
				viewName = fv.GetSpec().GetName()
			}
			if p.GetViewType() == "onDemandFeatureView" || c.odfvs[viewName] != nil {
				skip("sources", fmt.Sprintf("it reads on-demand view %q; Quiver's on-demand views read request sources and feature views", viewName), "")
				return
			}
			v := c.views[viewName]
			if v == nil {
				skip("sources", fmt.Sprintf("its feature view %q was not converted", viewName), "")
				return
			}
			if p.GetFeatureViewNameAlias() != "" {
				c.report(kind, name, "sources."+viewName, Changed, fmt.Sprintf("the view's alias %q is not kept: the input is named %s", p.GetFeatureViewNameAlias(), v.Name), "")
			}
			inputs = append(inputs, v.Name)
			for _, f := range v.Features {
				pc := pyColumn{Input: v.Name, Field: f.Name, Type: f.Type}
				addCol(f.Name, pc)
				addCol(viewName+"__"+f.Name, pc)
				if a := p.GetFeatureViewNameAlias(); a != "" {
					addCol(a+"__"+f.Name, pc)
				}
			}
		}
	}
	for col := range ambiguous {
		delete(cols, col) // a bare name two inputs have: only the full name translates
	}
	outputs := map[string]definitions.Type{}
	var feats []definitions.OnDemandFeature
	for _, f := range s.GetFeatures() {
		t, changed, ok, why := valueType(f.GetValueType())
		switch {
		case !definitions.ValidName(f.GetName()):
			skip("features."+f.GetName(), "not a valid Quiver feature name (letters, digits and '_')", "")
			return
		case !ok:
			skip("features."+f.GetName(), why, "")
			return
		case t.Array || changed != "":
			skip("features."+f.GetName(), fmt.Sprintf("on-demand features are scalars of Quiver's types; this one is Feast %s", f.GetValueType()), "")
			return
		}
		outputs[f.GetName()] = t
		feats = append(feats, definitions.OnDemandFeature{Name: f.GetName(), Type: t, Description: f.GetDescription()})
	}
	if mode != "pandas" {
		skip("mode", fmt.Sprintf("a %s-mode Python transformation is not translated (only plain arithmetic in pandas mode is)", mode), skeleton(inputs, feats))
		return
	}
	exprs, err := translatePandas(body, cols, outputs)
	if err != nil {
		why := strings.TrimPrefix(err.Error(), errUntranslatable.Error()+": ")
		if !errors.Is(err, errUntranslatable) {
			why = "it cannot be read: " + why
		}
		skip("feature_transformation", fmt.Sprintf("the pandas transformation has no obvious CEL equivalent (%s); only arithmetic (+ - * /) of input columns and numbers is translated", why), skeleton(inputs, feats))
		return
	}
	var lines []string
	for i := range feats {
		feats[i].Expr = exprs[feats[i].Name]
		lines = append(lines, fmt.Sprintf("%s = %s", feats[i].Name, feats[i].Expr))
	}
	v := &definitions.OnDemandFeatureView{
		Name:        c.name(definitions.KindOnDemandView, kind, name),
		Inputs:      inputs,
		Features:    feats,
		Description: s.GetDescription(),
		Tags:        c.tags(kind, name, s.GetTags(), s.GetOwner()),
	}
	c.report(kind, name, "feature_transformation", Translated,
		"the pandas transformation is plain arithmetic and was translated to CEL; check the expressions (a null input gives null, as NaN does in pandas)",
		strings.Join(lines, "\n"))
	if s.GetWriteToOnlineStore() {
		c.report(kind, name, "write_to_online_store", Changed, "Feast stores this view's values at write time; Quiver computes them at read time (serving and dataset create run the same CEL)", "")
	}
	c.odfvs[name] = v
	c.objects = append(c.objects, v)
}

// skeleton is the on_demand_feature_views entry a person completes by hand.
func skeleton(inputs []string, feats []definitions.OnDemandFeature) string {
	var b strings.Builder
	fmt.Fprintf(&b, "write it in CEL: { inputs: [%s], features: [", strings.Join(inputs, ", "))
	for i, f := range feats {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{ name: %s, type: %s, expr: ... }", f.Name, f.Type)
	}
	b.WriteString("] } (docs/definitions.md, on_demand_feature_views)")
	return b.String()
}
