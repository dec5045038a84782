package serving

import "context"

// SetTestHooks sets s's test hooks (see testHooks); call it before Serve.
func SetTestHooks(s *Server, admitted func(n int64), beforeEval func(ctx context.Context)) {
	s.hooks = testHooks{admitted: admitted, beforeEval: beforeEval}
}
