package warehouselock

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Writers share the lock; gc waits for them, and holds new writers off until it is done.
func TestSharedAndExclusive(t *testing.T) {
	ctx := context.Background()
	wh := t.TempDir()
	w1, err := Shared(ctx, wh)
	require.NoError(t, err)
	w2, err := Shared(ctx, wh)
	require.NoError(t, err)
	_, ok, err := TryExclusive(wh)
	require.NoError(t, err)
	require.False(t, ok, "gc cannot start while writers write")

	waited := make(chan struct{})
	got := make(chan func())
	go func() {
		rel, err := Exclusive(ctx, wh, func() { close(waited) })
		if err == nil {
			got <- rel
		}
	}()
	<-waited
	w1()
	w2()
	gc := <-got

	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = Shared(cctx, wh)
	require.ErrorIs(t, err, context.DeadlineExceeded, "a writer waits while gc runs")
	gc()
	w3, err := Shared(ctx, wh)
	require.NoError(t, err)
	w3()

	// A URL warehouse is not locked.
	rel, err := Exclusive(ctx, "s3://bucket/prefix", nil)
	require.NoError(t, err)
	rel()
}
