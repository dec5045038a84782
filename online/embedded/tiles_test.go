package embedded

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/onlinetest"
)

func TestTileFold(t *testing.T) {
	onlinetest.RunTileFoldTests(t, func(t *testing.T, now func() time.Time) online.Store {
		s, err := Open(context.Background(), filepath.Join(t.TempDir(), "online.db"), Options{Now: now})
		require.NoError(t, err)
		return s
	})
}
