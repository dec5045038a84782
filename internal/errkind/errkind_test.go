package errkind_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/errkind"
)

func TestOf(t *testing.T) {
	notFound := errkind.New(errkind.NotFound, "dataset not found")
	unavailable := errkind.New(errkind.Unavailable, "registry unavailable")
	tests := []struct {
		name string
		err  error
		want errkind.Kind
	}{
		{"nil", nil, ""},
		{"sentinel", notFound, errkind.NotFound},
		{"wrapped", fmt.Errorf("read x: %w", notFound), errkind.NotFound},
		{"marked", errkind.Mark(errkind.Failed, errors.New("job exited 1")), errkind.Failed},
		{"the first kind in order wins", errkind.Mark(errkind.Failed, fmt.Errorf("run: %w", unavailable)), errkind.Unavailable},
		{"failed before invalid", errkind.Mark(errkind.Failed, errkind.New(errkind.Invalid, "bad column")), errkind.Failed},
		{"joined", errors.Join(notFound, errkind.New(errkind.Conflict, "c")), errkind.Conflict},
		{"context canceled", fmt.Errorf("x: %w", context.Canceled), errkind.Canceled},
		{"none", errors.New("boom"), errkind.Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, errkind.Of(tc.err))
		})
	}
}

func TestKindsLeaveMessagesAlone(t *testing.T) {
	base := errors.New("base")
	require.Equal(t, "not found", errkind.New(errkind.NotFound, "not found").Error())
	err := errkind.Errorf(errkind.Invalid, "column %q: %w", "x", base)
	require.Equal(t, `column "x": base`, err.Error())
	require.ErrorIs(t, err, base)
	require.ErrorIs(t, err, errkind.Invalid)
	require.Equal(t, "base", errkind.Mark(errkind.Usage, base).Error())
	require.NoError(t, errkind.Mark(errkind.Usage, nil))
}
