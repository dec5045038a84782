package serving

import "context"

// SetTestHooks sets s's test hooks (see testHooks); call it before Serve.
func SetTestHooks(s *Server, admitted func(n int64), beforeEval func(ctx context.Context)) {
	s.hooks = testHooks{admitted: admitted, beforeEval: beforeEval}
}

// PendingRequestSizes is how many large gRPC requests' sizes the codec recorded and no
// interceptor has taken yet.
func PendingRequestSizes(s *Server) int {
	n := 0
	s.sizes.m.Range(func(_, _ any) bool { n++; return true })
	return n
}
