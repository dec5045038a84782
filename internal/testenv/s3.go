package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 test server: S3Proxy (org.gaul:s3proxy, its self-contained jar from Maven Central) over
// jclouds' filesystem blob store, installed by scripts/s3proxy.sh. QUIVER_S3PROXY_HOME names the
// install directory (lib/ holds the jar); unset, the helper runs the script. The JVM is
// QUIVER_S3PROXY_JAVA_HOME/bin/java, else java on PATH (S3Proxy 4 needs Java 17 or newer).
const (
	s3proxyHomeEnv = "QUIVER_S3PROXY_HOME"
	s3proxyJavaEnv = "QUIVER_S3PROXY_JAVA_HOME"
	s3proxyScript  = "s3proxy.sh"
	s3proxyHeap    = "256m"
	s3StartTimeout = 90 * time.Second
	s3Region       = "us-east-1"
	s3AccessKey    = "quiver"
	s3SecretKey    = "quiver-test-secret"
	s3ProbeBucket  = "quiver-testenv-probe"
)

// S3 is a throwaway S3-compatible object store on a loopback port: S3Proxy keeping buckets as
// directories and objects as files in a temporary directory, requests signed with
// AccessKey/SecretKey (AWS SigV4, or V2) and addressed path-style.
type S3 struct {
	// Endpoint is the server's URL, e.g. "http://127.0.0.1:41234".
	Endpoint string `json:"endpoint"`
	// Region is the region clients sign for.
	Region string `json:"region"`
	// AccessKey and SecretKey are the one identity's credentials (all permissions).
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	// Dir is the server's directory: s3proxy.conf, the buckets under data/, its log in s3proxy.log.
	Dir string `json:"dir"`

	proc *process
}

// StartS3 starts S3Proxy on a free loopback port in a temporary directory, waits until a bucket
// can be created and written, and stops it when t cleans up.
func StartS3(t TB) *S3 {
	t.Helper()
	s, err := startS3(t.TempDir(), false)
	if err != nil {
		t.Fatalf("start s3 (s3proxy): %v", err)
	}
	t.Cleanup(s.proc.stop)
	t.Logf("s3 (s3proxy) listening on %s (dir %s)", s.Endpoint, s.Dir)
	return s
}

// SharedS3 returns the S3 server shared by the test run (see RunDirEnv) or, without a run
// directory, by this test binary (started on first use, stopped when t, normally TestMain's
// MainTB, cleans up). Tests isolate themselves with NewBucket.
func SharedS3(t TB) *S3 {
	t.Helper()
	return sharedServer(t, "s3", "s3 (s3proxy)", StartS3, func(dir string) (*S3, *process, error) {
		s, err := startS3(dir, true)
		if err != nil {
			return nil, nil, err
		}
		return s, s.proc, nil
	}, func(s *S3) string { return fmt.Sprintf("%s (dir %s)", s.Endpoint, s.Dir) })
}

func startS3(dir string, detached bool) (*S3, error) {
	home, err := installed(s3proxyHomeEnv, s3proxyScript)
	if err != nil {
		return nil, err
	}
	jars, _ := filepath.Glob(filepath.Join(home, "lib", "s3proxy-*-jar-with-dependencies.jar"))
	if len(jars) != 1 {
		return nil, fmt.Errorf("s3proxy: want one s3proxy-*-jar-with-dependencies.jar in %s, found %d (reinstall with scripts/%s)", filepath.Join(home, "lib"), len(jars), s3proxyScript)
	}
	var java string
	if h := os.Getenv(s3proxyJavaEnv); h != "" {
		java = filepath.Join(h, "bin", "java")
	} else if java, err = LookBinary("java", "openjdk-17-jre-headless"); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		s, err := tryStartS3(java, jars[0], dir, detached)
		if err == nil || attempt == 3 || !portTaken(err) {
			return s, err
		}
	}
}

func tryStartS3(java, jar, dir string, detached bool) (*S3, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	s := &S3{
		Endpoint:  "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Region:    s3Region,
		AccessKey: s3AccessKey,
		SecretKey: s3SecretKey,
		Dir:       dir,
	}
	conf := propertiesFile(map[string]string{
		"s3proxy.endpoint":      s.Endpoint,
		"s3proxy.authorization": "aws-v2-or-v4",
		"s3proxy.identity":      s.AccessKey,
		"s3proxy.credential":    s.SecretKey,
		// Buckets are directories under data/, objects files (a key's "/" a subdirectory).
		"jclouds.provider":           "filesystem",
		"jclouds.filesystem.basedir": data,
		// Trino's native S3 file system lists with x-amz-optional-object-attributes (it asks for
		// the restore status of archived objects), which S3Proxy answers 501 Not Implemented
		// unless told to ignore headers it does not implement; none of its objects is archived.
		"s3proxy.ignore-unknown-headers": "true",
	})
	confPath := filepath.Join(dir, "s3proxy.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	args := []string{
		"-Xms32m", "-Xmx" + s3proxyHeap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-jar", jar, "--properties", confPath,
	}
	p, err := startProcess("s3proxy", java, args, processOptions{
		Dir: dir, Log: filepath.Join(dir, "s3proxy.log"), Detached: detached,
		// S3Proxy's logback configuration reads these: warnings and errors only, no request lines.
		Env: []string{"LOG_LEVEL=warn", "JETTY_LOG_LEVEL=warn"},
	})
	if err != nil {
		return nil, err
	}
	s.proc = p
	if err := waitReady(p, s3StartTimeout, s.probe); err != nil {
		p.stop()
		return nil, err
	}
	return s, nil
}

// probe creates (or finds) a bucket and writes an object in it: the server answers, checks the
// signature and writes to its store.
func (s *S3) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := s.Client()
	_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s3ProbeBucket)})
	var owned *s3types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket: %w", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s3ProbeBucket), Key: aws.String("probe"), Body: strings.NewReader("ok"),
	}); err != nil {
		return fmt.Errorf("put object: %w", err)
	}
	return nil
}

// Client returns an S3 client for the server: static credentials, path-style addressing, no
// keep-alive connections (a server shared by the test run outlives the test binary's checks
// that no goroutine is left, and an idle connection keeps two).
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		UsePathStyle: true,
		HTTPClient:   &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	})
}

var bucketSeq atomic.Int64

// NewBucket creates a bucket with a unique name for one test and returns the name. When t
// cleans up, the bucket's objects and the bucket are deleted.
func (s *S3) NewBucket(t TB) string {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("t%d-%s", bucketSeq.Add(1), hex.EncodeToString(rnd[:]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s at %s: %v", name, s.Endpoint, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := EmptyBucket(ctx, c, name); err != nil {
			t.Logf("empty bucket %s: %v", name, err)
			return
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
			t.Logf("delete bucket %s: %v", name, err)
		}
	})
	return name
}

// EmptyBucket deletes every object in bucket, a page of keys per DeleteObjects request.
func EmptyBucket(ctx context.Context, c *s3.Client, bucket string) error {
	pages := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		if len(page.Contents) == 0 {
			continue
		}
		ids := make([]s3types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			ids[i] = s3types.ObjectIdentifier{Key: o.Key}
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return err
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("delete %s: %s", aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
	}
	return nil
}

// IcebergProperties are the iceberg-go catalog properties (io.S3*) that reach this server.
func (s *S3) IcebergProperties() map[string]string {
	return map[string]string{
		"s3.endpoint":                 s.Endpoint,
		"s3.region":                   s.Region,
		"s3.access-key-id":            s.AccessKey,
		"s3.secret-access-key":        s.SecretKey,
		"s3.force-virtual-addressing": "false",
	}
}

// TrinoProperties are the catalog properties of Trino's native S3 file system that reach this
// server; add them to an Iceberg catalog whose warehouse is s3://BUCKET/...
func (s *S3) TrinoProperties() map[string]string {
	return map[string]string{
		"fs.s3.enabled":        "true",
		"s3.endpoint":          s.Endpoint,
		"s3.region":            s.Region,
		"s3.path-style-access": "true",
		"s3.aws-access-key":    s.AccessKey,
		"s3.aws-secret-key":    s.SecretKey,
		// S3's minimum part size (Trino's default is 32MB): files of a few MB already go up as
		// multipart uploads, as large files do in production.
		"s3.streaming.part-size": "5MB",
	}
}
