package definitions

import (
	"fmt"
	"strings"
)

// CountKinds says how many objects of each kind objs holds, in the kinds' order: "1 entity,
// 2 feature views", or "no objects".
func CountKinds(objs []Object) string {
	counts := map[Kind]int{}
	for _, o := range objs {
		counts[o.ObjectKind()]++
	}
	var parts []string
	for _, k := range Kinds {
		if n := counts[k]; n > 0 {
			label := k.Label()
			switch {
			case n == 1:
			case strings.HasSuffix(label, "y"):
				label = strings.TrimSuffix(label, "y") + "ies"
			default:
				label += "s"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, label))
		}
	}
	if len(parts) == 0 {
		return "no objects"
	}
	return strings.Join(parts, ", ")
}
