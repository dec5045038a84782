package auth

import "strings"

// compiledPolicy is a Policy indexed for the hot path: per identity, the resources granted.
// Unqualified names are qualified with the served project when compiling, so a check is a
// few map lookups with no allocation.
type compiledPolicy struct {
	byID map[string]*perms
}

type nameKey struct{ project, name string }

type perms struct {
	allProjects bool
	projects    map[string]struct{}
	// allUI and ui are the projects whose UI a ui grant names ("*": every project).
	allUI bool
	ui    map[string]struct{}
	// byKind[kind] holds (project, name) pairs; name "*" covers every one in the project.
	byKind [kindCount]map[nameKey]struct{}
}

func compilePolicy(p *Policy, project string) *compiledPolicy {
	c := &compiledPolicy{byID: map[string]*perms{}}
	if p == nil {
		return c
	}
	for _, g := range p.Grants {
		for _, id := range g.Principals {
			pm := c.byID[id]
			if pm == nil {
				pm = &perms{projects: map[string]struct{}{}, ui: map[string]struct{}{}}
				for k := range pm.byKind {
					pm.byKind[k] = map[nameKey]struct{}{}
				}
				c.byID[id] = pm
			}
			for _, pr := range g.Projects {
				if pr == "*" {
					pm.allProjects = true
				}
				pm.projects[pr] = struct{}{}
			}
			for _, pr := range g.UI {
				if pr == "*" {
					pm.allUI = true
				}
				pm.ui[pr] = struct{}{}
			}
			for kind, names := range map[Kind][]string{KindFeatureService: g.FeatureServices, KindFeatureView: g.FeatureViews, KindModel: g.Models, KindPushView: g.PushViews, KindDataset: g.Datasets} {
				for _, n := range names {
					key := nameKey{project: project, name: n}
					if pr, name, ok := strings.Cut(n, "/"); ok {
						key = nameKey{project: pr, name: name}
					}
					pm.byKind[kind][key] = struct{}{}
				}
			}
		}
	}
	return c
}

// allows reports whether the identity's grants cover r.
func (pm *perms) allows(r Resource) bool {
	if r.Kind == KindPushView || r.Kind == KindDataset {
		return pm.allowsName(r)
	}
	if pm.allProjects {
		return true
	}
	if _, ok := pm.projects[r.Project]; ok {
		return true
	}
	switch r.Kind {
	case KindProject:
		return false
	case KindUI:
		_, ok := pm.ui[r.Project]
		return ok || pm.allUI
	}
	return pm.allowsName(r)
}

// allowsName reports whether a grant names r, or every one of its kind in its project.
func (pm *perms) allowsName(r Resource) bool {
	set := pm.byKind[r.Kind]
	if _, ok := set[nameKey{r.Project, r.Name}]; ok {
		return true
	}
	_, ok := set[nameKey{r.Project, "*"}]
	return ok
}

// allows reports whether any of p's identities (or "*") is granted r.
func (c *compiledPolicy) allows(p *Principal, r Resource) bool {
	if pm := c.byID[Anyone]; pm != nil && pm.allows(r) {
		return true
	}
	for _, id := range p.IDs() {
		if pm := c.byID[id]; pm != nil && pm.allows(r) {
			return true
		}
	}
	return false
}

// check returns a *DeniedError for the first resource p is not granted, or nil.
func (c *compiledPolicy) check(p *Principal, rs []Resource) error {
	for _, r := range rs {
		if !c.allows(p, r) {
			return &DeniedError{Principal: p.String(), Resource: r}
		}
	}
	return nil
}
