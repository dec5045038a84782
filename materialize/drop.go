package materialize

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// Drops is the registry side of dropping data: the pending drops and their completion.
type Drops interface {
	PendingDrops(ctx context.Context, project string) ([]registry.PendingDrop, error)
	FinishDrop(ctx context.Context, project, view string, generation int) error
}

// DropStores are the stores a drop deletes from. Online may be nil when no pending drop
// needs it (Online false); Offline likewise.
type DropStores struct {
	Online  online.Writer
	Offline offline.Dropper
}

// NeedsStores reports which stores the drops need.
func NeedsStores(drops []registry.PendingDrop) (needOnline, needOffline bool) {
	for _, d := range drops {
		needOnline = needOnline || d.Online
		needOffline = needOffline || d.Offline
	}
	return needOnline, needOffline
}

// FinishDrops deletes the data of every pending drop of project and marks each finished: the
// view's online rows of the ended generation and every earlier one (for every entity), then
// its offline table of the ended generation. Every step is idempotent, and a drop is marked
// finished only after its data is gone, so a run interrupted at any point is completed by
// the next one. It stops at the first failure and returns the drops finished so far.
func FinishDrops(ctx context.Context, reg Drops, project string, st DropStores) ([]registry.PendingDrop, error) {
	pending, err := reg.PendingDrops(ctx, project)
	if err != nil {
		return nil, err
	}
	var done []registry.PendingDrop
	for _, d := range pending {
		if err := drop(ctx, project, d, st); err != nil {
			return done, err
		}
		if err := reg.FinishDrop(ctx, project, d.View, d.Generation); err != nil {
			return done, err
		}
		done = append(done, d)
	}
	return done, nil
}

func drop(ctx context.Context, project string, d registry.PendingDrop, st DropStores) error {
	if d.Online {
		if st.Online == nil {
			return fmt.Errorf("drop online rows of feature view %q: no online store given", d.View)
		}
		v, err := online.NewViewRef(project, d.View, d.Generation)
		if err != nil {
			return err
		}
		if err := st.Online.DeleteView(ctx, v); err != nil {
			return fmt.Errorf("drop online rows of feature view %q generation %d: %w", d.View, d.Generation, err)
		}
	}
	if d.Offline {
		if st.Offline == nil {
			return fmt.Errorf("drop offline table of feature view %q: no offline store given", d.View)
		}
		if err := st.Offline.DropTable(ctx, d.View, d.Generation); err != nil {
			return fmt.Errorf("drop offline table of feature view %q generation %d: %w", d.View, d.Generation, err)
		}
	}
	return nil
}

// DropPreview says what dropping a generation of a view would delete.
type DropPreview struct {
	View       string
	Generation int
	// OnlineRows is the number of online rows of that generation and earlier ones; -1 when
	// unknown (OnlineError says why).
	OnlineRows  int64
	OnlineError string
	// OfflineTable is the table's name; OfflineExists whether it exists now, with
	// OfflineRows rows in its latest snapshot (-1 when unknown: OfflineError says why).
	OfflineTable  string
	OfflineExists bool
	OfflineRows   int64
	OfflineError  string
}

// PreviewDrop counts what dropping generation gen of view would delete. Either store may be
// nil (its figures are then unknown); errors are reported in the preview, not returned, so a
// plan still prints when a store is down.
func PreviewDrop(ctx context.Context, project, view string, gen int, counter online.Counter, off offline.Reader, tableName func(view string, gen int) string) DropPreview {
	p := DropPreview{View: view, Generation: gen, OnlineRows: -1, OfflineRows: -1}
	if tableName != nil {
		p.OfflineTable = tableName(view, gen)
	}
	if counter == nil {
		p.OnlineError = "online store not open"
	} else if v, err := online.NewViewRef(project, view, gen); err != nil {
		p.OnlineError = err.Error()
	} else if n, err := counter.CountView(ctx, v); err != nil {
		p.OnlineError = err.Error()
	} else {
		p.OnlineRows = n
	}
	if off == nil {
		p.OfflineError = "offline store not open"
		return p
	}
	// The latest snapshot's summary holds the table's row count: no data is read.
	snaps, err := off.Snapshots(ctx, view, gen)
	switch {
	case errors.Is(err, offline.ErrTableNotFound):
		p.OfflineRows = 0
	case err != nil:
		p.OfflineError = err.Error()
	default:
		p.OfflineExists, p.OfflineRows = true, 0
		if len(snaps) > 0 {
			p.OfflineRows = -1
			if n, err := strconv.ParseInt(snaps[len(snaps)-1].Summary["total-records"], 10, 64); err == nil {
				p.OfflineRows = n
			}
		}
	}
	return p
}
