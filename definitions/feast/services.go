package feast

import (
	"fmt"
	"slices"

	"github.com/quiverfs/quiver/definitions"
)

// featureServices converts feature services: each projection's features that were converted,
// in Feast's order. A feature name a service selects twice (from two views, which Feast
// serves with full feature names) is kept from the first view only: Quiver's datasets and
// responses name features without their view, so names in a service are unique.
func (c *converter) featureServices() {
	for _, fs := range c.reg.GetFeatureServices() {
		s := fs.GetSpec()
		if s.GetProject() != c.project {
			continue
		}
		const kind = "feature_service"
		name := s.GetName()
		svc := &definitions.FeatureService{
			Name:        c.name(definitions.KindFeatureService, kind, name),
			Description: s.GetDescription(),
			Tags:        c.tags(kind, name, s.GetTags(), s.GetOwner()),
		}
		owner := map[string]string{} // feature name -> the Feast view it was selected from
		for _, p := range s.GetFeatures() {
			view := p.GetFeatureViewName()
			where := "features." + view
			if a := p.GetFeatureViewNameAlias(); a != "" {
				c.report(kind, name, where, Changed, fmt.Sprintf("the alias %q is not kept: Quiver names the features by view %q", a, view), "")
			}
			if len(p.GetJoinKeyMap()) > 0 {
				c.report(kind, name, where, Skipped, fmt.Sprintf("join_key_map (%s) reads the view with other entity columns; Quiver has no equivalent", mappingText(p.GetJoinKeyMap())), "declare another entity and view with those join keys")
				continue
			}
			var available []string
			qview := ""
			switch {
			case c.views[view] != nil:
				v := c.views[view]
				qview = v.Name
				for _, f := range v.Features {
					available = append(available, f.Name)
				}
			case c.odfvs[view] != nil:
				v := c.odfvs[view]
				qview = v.Name
				for _, f := range v.Features {
					available = append(available, f.Name)
				}
			default:
				c.report(kind, name, where, Skipped, fmt.Sprintf("view %q was not converted (see its entry in this report)", view), "")
				continue
			}
			var picked []string
			for _, col := range p.GetFeatureColumns() {
				f := col.GetName()
				switch prev, dup := owner[f]; {
				case !slices.Contains(available, f):
					c.report(kind, name, where+"."+f, Skipped, fmt.Sprintf("feature %s:%s was not converted (see view %s)", view, f, view), "")
				case dup:
					c.report(kind, name, where+"."+f, Skipped,
						fmt.Sprintf("feature name %q is also selected from view %q: Feast serves both only with full feature names (%s__%s); Quiver names features without their view, unique in a service", f, prev, view, f),
						"select it in a second feature service, or rename the feature in one of the views; see docs/from-feast.md, full feature names")
				default:
					owner[f] = view
					picked = append(picked, f)
				}
			}
			if len(picked) == 0 {
				continue
			}
			if slices.Equal(picked, available) {
				svc.Features = append(svc.Features, definitions.FeatureRef{View: qview, Feature: "*"})
				continue
			}
			for _, f := range picked {
				svc.Features = append(svc.Features, definitions.FeatureRef{View: qview, Feature: f})
			}
		}
		if lc := s.GetLoggingConfig(); lc != nil {
			c.report(kind, name, "logging_config", Skipped, "feature logging has no Quiver equivalent yet", "")
		}
		if s.GetPrecomputeOnline() {
			c.report(kind, name, "precompute_online", Skipped, "Quiver reads a service's views in one online round trip; there is no precomputed vector", "")
		}
		if len(svc.Features) == 0 {
			c.report(kind, name, "", Skipped, "none of the service's features was converted", "")
			continue
		}
		c.objects = append(c.objects, svc)
	}
}

// unconverted reports the kinds of Feast objects that have no Quiver equivalent at all.
func (c *converter) unconverted() {
	for _, v := range c.reg.GetLabelViews() {
		if s := v.GetSpec(); s.GetProject() == c.project {
			c.report("label_view", s.GetName(), "", Skipped, "label views (mutable human labels) have no Quiver equivalent: labels are columns of the entity rows dataset create reads", "pass the labels as columns of the --entities file")
		}
	}
	for _, t := range c.reg.GetFeatureTables() {
		if s := t.GetSpec(); s.GetProject() == c.project {
			c.report("feature_table", s.GetName(), "", Skipped, "feature tables are Feast's pre-0.10 API", "migrate it to a feature view in Feast first")
		}
	}
	for _, d := range c.reg.GetSavedDatasets() {
		if s := d.GetSpec(); s.GetProject() == c.project {
			c.report("saved_dataset", s.GetName(), "", Skipped, "Feast saved datasets are not migrated", "rebuild it with quiver dataset create NAME --service SVC --entities FILE")
		}
	}
	for _, r := range c.reg.GetValidationReferences() {
		if r.GetProject() == c.project {
			c.report("validation_reference", r.GetName(), "", Skipped, "data validation profiles have no Quiver equivalent", "")
		}
	}
	for _, p := range c.reg.GetPermissions() {
		if s := p.GetSpec(); s.GetProject() == c.project {
			c.report("permission", s.GetName(), "", Skipped, "Feast permissions are not migrated", "quiver serve's policy file (docs/security.md)")
		}
	}
}
