package serving_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/serving"
)

// BenchmarkHTTPHandler is 1-entity GetOnlineFeatures (3 views × 10 features) through the
// HTTP/JSON handler in process, without a network: the typed form (the gateway and protojson)
// and the plain form (/v1/online-features). Profile it to see what each form costs beyond
// the retrieval both share:
//
//	go test -run '^$' -bench BenchmarkHTTPHandler -cpuprofile cpu.out ./serving/
func BenchmarkHTTPHandler(b *testing.B) {
	e := setupBench(b)
	opts := e.opts
	opts.Registerer = prometheus.NewRegistry()
	srv, err := serving.NewServer(context.Background(), opts)
	require.NoError(b, err)
	h := srv.HTTPHandler()
	for _, form := range []struct{ name, path, body string }{
		{"typed", "/v1/get-online-features", `{"feature_service":"bench30","entities":{"user_id":{"val":[{"int64_val":"USER"}]}}}`},
		{"plain", "/v1/online-features", `{"feature_service":"bench30","entities":{"user_id":[USER]}}`},
	} {
		b.Run(form.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				body := strings.Replace(form.body, "USER", strconv.Itoa(i%benchUsers), 1)
				req := httptest.NewRequest(http.MethodPost, form.path, strings.NewReader(body))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
