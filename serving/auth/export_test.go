package auth

// DisableTokenCache makes g verify every JWT in full (benchmarks).
func DisableTokenCache(g *Guard) {
	if g.jwt != nil {
		g.jwt.noCache = true
	}
}
