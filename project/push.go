package project

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/ingest"
	"github.com/quiverfs/quiver/online"
)

// pushView is a push view of the applied definitions (ingest.ErrUnknownView or
// ingest.ErrNotPushable otherwise).
func (p *Project) pushView(ctx context.Context, view string) (*ingest.View, error) {
	snap, err := p.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	return ingest.ViewSetOf(snap).View(view)
}

// readPushFile reads a Parquet or CSV file of rows of a push view, checked whole.
func (p *Project) readPushFile(ctx context.Context, view, path string) (*ingest.View, []arrow.RecordBatch, string, error) {
	v, err := p.pushView(ctx, view)
	if err != nil {
		return nil, nil, "", err
	}
	recs, batchID, err := ingest.ReadFile(ctx, v, path, nil)
	return v, recs, batchID, err
}

// Push writes the rows of a Parquet or CSV file to a push view directly: the latest row per
// entity online (stale-write guard kept), then every row to the view's offline table in one
// commit that a second push of the same file does not repeat (ingest.PushDirect).
func (p *Project) Push(ctx context.Context, view, path string) (ingest.DirectResult, error) {
	v, recs, batchID, err := p.readPushFile(ctx, view, path)
	if err != nil {
		return ingest.DirectResult{}, err
	}
	release := func() {
		for _, r := range recs {
			r.Release()
		}
	}
	unlock, err := p.LockShared(ctx)
	if err != nil {
		release()
		return ingest.DirectResult{}, err
	}
	defer unlock()
	off, err := p.Offline(ctx)
	if err != nil {
		release()
		return ingest.DirectResult{}, err
	}
	var on online.Writer
	if v.Online != nil {
		if on, err = p.Online(ctx); err != nil {
			release()
			return ingest.DirectResult{}, err
		}
	}
	return ingest.PushDirect(ctx, v, on, off, recs, batchID)
}

// PushBatch reads the rows of a Parquet or CSV file of a push view, checked whole, as a batch
// to send to a server (quiver push --server).
func (p *Project) PushBatch(ctx context.Context, view, path string) (ingest.Batch, error) {
	v, recs, _, err := p.readPushFile(ctx, view, path)
	if err != nil {
		return ingest.Batch{}, err
	}
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	return v.ToBatch(recs...)
}
