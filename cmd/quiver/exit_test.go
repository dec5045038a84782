package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// TestExitMap: the one error-kind → exit-code map, as docs/cli.md states it.
func TestExitMap(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("doing a thing: %w", err) }
	tests := []struct {
		name string
		err  error
		kind string
		code int
	}{
		{"usage", usage("bad flag"), kindUsage, exitUsage},
		{"invalid definitions", wrap(definitions.ErrInvalid), kindInvalid, exitInvalid},
		{"no repo", wrap(config.ErrNoRepo), kindInvalid, exitInvalid},
		{"registry invalid", wrap(registry.ErrInvalid), kindInvalid, exitInvalid},
		{"online invalid", wrap(online.ErrInvalidArgument), kindInvalid, exitInvalid},
		{"invalid source", wrap(offline.ErrInvalidSource), kindInvalid, exitInvalid},
		{"not found", wrap(registry.ErrDatasetNotFound), kindNotFound, exitInvalid},
		{"registry unavailable", wrap(registry.ErrUnavailable), kindUnavailable, exitUnavailable},
		{"online unavailable", wrap(online.ErrUnavailable), kindUnavailable, exitUnavailable},
		{"unavailable inside a failed run", errkind.Mark(errkind.Failed, wrap(online.ErrUnavailable)), kindUnavailable, exitUnavailable},
		{"conflict", wrap(&registry.RevisionConflictError{Planned: 1, Current: 2}), kindConflict, exitUnavailable},
		{"namespace of another project", wrap(&registry.NamespaceOwnedError{Namespace: "quiver_x", Owner: "a", Project: "x"}), kindProjectConflict, exitProjectConflict},
		{"failed", errkind.Mark(errkind.Failed, errors.New("job exited 1")), kindFailed, exitFailed},
		{"canceled", wrap(context.Canceled), kindCanceled, exitFailed},
		{"anything else", errors.New("boom"), kindFailed, exitFailed},
		{"grpc invalid", statusError(status.Error(codes.InvalidArgument, "bad")), kindInvalid, exitInvalid},
		{"grpc not found", statusError(status.Error(codes.NotFound, "no model")), kindNotFound, exitInvalid},
		{"grpc unavailable", statusError(status.Error(codes.Unavailable, "down")), kindUnavailable, exitUnavailable},
		{"grpc unauthenticated", statusError(status.Error(codes.Unauthenticated, "no token")), kindUnauthenticated, exitUnavailable},
		{"grpc permission denied", statusError(status.Error(codes.PermissionDenied, "not yours")), kindPermission, exitUnavailable},
		{"grpc internal", statusError(status.Error(codes.Internal, "oops")), kindFailed, exitFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.kind, errorKind(tc.err))
			require.Equal(t, tc.code, exitCode(tc.err))
		})
	}
	for kind, code := range kindCodes {
		require.Contains(t, []int{exitInvalid, exitUsage, exitUnavailable, exitFailed, exitProjectConflict}, code, kind)
	}
}

// TestRemoteRefusalKindOnce: a server's refusal is printed with its kind once, whether the
// server sends the message alone (quiver today) or with the kind (servers before issue 22).
func TestRemoteRefusalKindOnce(t *testing.T) {
	for _, msg := range []string{"no credentials", "unauthenticated: no credentials"} {
		require.Equal(t, "unauthenticated: no credentials", statusError(status.Error(codes.Unauthenticated, msg)).Error())
	}
	for _, msg := range []string{"token:a is not granted model", "permission denied: token:a is not granted model"} {
		require.Equal(t, "permission denied: token:a is not granted model", statusError(status.Error(codes.PermissionDenied, msg)).Error())
	}
}

func TestWantsJSON(t *testing.T) {
	require.True(t, wantsJSON([]string{"list", "-o", "json", "--bogus"}))
	require.True(t, wantsJSON([]string{"--output=json", "list"}))
	require.True(t, wantsJSON([]string{"-ojson"}))
	require.False(t, wantsJSON([]string{"list", "-o", "table"}))
	require.False(t, wantsJSON([]string{"train", "--", "-o", "json"}))
}
