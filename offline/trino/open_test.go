package trino

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
)

// TestOpenUnparsableDSNNeverPrintsPassword: a DSN that does not parse is refused at Open,
// with the password redacted (the driver would quote it whole at the first query).
func TestOpenUnparsableDSNNeverPrintsPassword(t *testing.T) {
	for _, dsn := range []string{"http://quiver:hunter2@trino:port?catalog=iceberg", "http://quiver:hun ter2@trino:8080?catalog=iceberg"} {
		_, err := Open(dsn)
		require.ErrorIs(t, err, offline.ErrInvalidSource, dsn)
		require.NotContains(t, err.Error(), "hunter2", dsn)
		require.NotContains(t, err.Error(), "hun ter2", dsn)
		require.ErrorContains(t, err, "open trino http://quiver:[redacted]@")
	}
}
