package definitions

import (
	"go.yaml.in/yaml/v3"

	"github.com/quiverfs/quiver/internal/yamlx"
)

// PushSource marks a source whose rows are written by producers — `quiver push` and the
// PushFeatures RPC — rather than read by materialization. Its timestamp_field and
// created_timestamp_field name the columns holding each pushed row's times in pushed files.
// A view on a push source is not materialized; its offline table receives the pushed rows.
type PushSource struct{}

// pushSource decodes `push: {}`; the push source has no settings of its own.
func (d *decoder) pushSource(n *yaml.Node) *PushSource {
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "push source must be an empty mapping (push: {}), got %s", yamlx.Describe(n))
	} else if len(n.Content) > 0 {
		d.Errorf(n.Content[0], "unknown key %q in push source: it takes no keys; write push: {}", n.Content[0].Value)
	}
	return &PushSource{}
}

// IsPush reports whether rows of a view on this source arrive by push or stream (push and
// kafka sources) rather than by materialization.
func (s *Source) IsPush() bool { return s != nil && (s.Push != nil || s.Kafka != nil) }
