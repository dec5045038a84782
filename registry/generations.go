package registry

import (
	"context"
	"time"
)

// GenerationStore holds the data drops that ending a feature view's definition generation
// leaves to do (DefinitionReader.Generations reads the generations themselves).
//
// A feature view's data belongs to the generation it was written for. Apply starts a new
// generation of a view when the request lists it in NewGenerations (a breaking change) and
// when the view is removed (so that a view declared again under the same name starts fresh);
// both record a PendingDrop for the generation that ended, in the apply's transaction, and
// forget the view's watermark so that materialization starts over. The caller deletes the
// data after the commit and then calls FinishDrop: a drop interrupted part way is still
// pending and is finished by whoever runs the pending drops next.
type GenerationStore interface {
	// PendingDrops lists the project's unfinished drops, by view then generation.
	PendingDrops(ctx context.Context, project string) ([]PendingDrop, error)
	// FinishDrop removes a pending drop once its data is gone. Finishing a drop that is not
	// pending (finished already by someone else) is not an error.
	FinishDrop(ctx context.Context, project, view string, generation int) error
}

// PendingDrop is data of an ended generation of one feature view still to be deleted: its
// online rows of Generation or an earlier generation, and its offline table of Generation.
type PendingDrop struct {
	Project    string
	View       string
	Generation int
	// Online: delete the view's online rows of those generations.
	Online bool
	// Offline: drop the view's offline table of Generation (false with --keep-data).
	Offline   bool
	Revision  int64 // the apply that recorded it
	CreatedAt time.Time
}

// Generation is the generation of view in gens (as Generations returns it): 1 when absent.
func Generation(gens map[string]int, view string) int {
	if g := gens[view]; g > 1 {
		return g
	}
	return 1
}
