package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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

// S3 test server: SeaweedFS (`weed server` with its S3 gateway), built from source by
// scripts/seaweedfs.sh. QUIVER_WEED names the binary; unset, the helper runs the script.
const (
	weedEnv         = "QUIVER_WEED"
	weedScript      = "seaweedfs.sh"
	s3StartTimeout  = 90 * time.Second
	s3Region        = "us-east-1"
	s3AccessKey     = "quiver"
	s3SecretKey     = "quiver-test-secret"
	s3ProbeBucket   = "quiver-testenv-probe"
	s3VolumeLimitMB = 64 // small volumes: every bucket is a SeaweedFS collection with volumes of its own
)

// S3 is a throwaway S3-compatible object store on loopback ports: SeaweedFS's master, volume
// server, filer and S3 gateway in one `weed server` process, data in a temporary directory,
// requests signed with AccessKey/SecretKey (SigV4) and addressed path-style.
type S3 struct {
	// Endpoint is the gateway's URL, e.g. "http://127.0.0.1:41234".
	Endpoint string `json:"endpoint"`
	// Region is the region clients sign for.
	Region string `json:"region"`
	// AccessKey and SecretKey are the one identity's credentials (all permissions).
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	// Dir is the server's directory: data under data/, its log in weed.log.
	Dir string `json:"dir"`

	proc *process
}

// StartS3 starts SeaweedFS with its S3 gateway on free loopback ports in a temporary directory,
// waits until a bucket can be created, and stops it when t cleans up.
func StartS3(t TB) *S3 {
	t.Helper()
	s, err := startS3(t.TempDir(), false)
	if err != nil {
		t.Fatalf("start s3 (seaweedfs): %v", err)
	}
	t.Cleanup(s.proc.stop)
	t.Logf("s3 (seaweedfs) listening on %s (dir %s)", s.Endpoint, s.Dir)
	return s
}

// SharedS3 returns the S3 server shared by the test run (see RunDirEnv) or, without a run
// directory, by this test binary (started on first use, stopped when t, normally TestMain's
// MainTB, cleans up). Tests isolate themselves with NewBucket.
func SharedS3(t TB) *S3 {
	t.Helper()
	runDir := os.Getenv(RunDirEnv)
	if runDir == "" {
		return sharedInProcess(t, "s3", StartS3)
	}
	raw, err := acquireShared(runDir, "s3", func(info []byte) error {
		var s S3
		if err := json.Unmarshal(info, &s); err != nil {
			return err
		}
		return s.probe()
	}, func(dir string) (*process, any, error) {
		s, err := startS3(dir, true)
		if err != nil {
			return nil, nil, err
		}
		return s.proc, s, nil
	})
	if err != nil {
		t.Fatalf("start s3 (seaweedfs): %v", err)
	}
	var s S3
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("shared s3: %v", err)
	}
	t.Logf("s3 (seaweedfs) shared by the test run at %s (dir %s)", s.Endpoint, s.Dir)
	return &s
}

func startS3(dir string, detached bool) (*S3, error) {
	bin, err := installed(weedEnv, weedScript)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		s, err := tryStartS3(bin, dir, detached)
		if err == nil || attempt == 3 || !portTaken(err) {
			return s, err
		}
	}
}

func tryStartS3(bin, dir string, detached bool) (*S3, error) {
	// master, volume, filer and S3 gateway: an HTTP and a gRPC port each.
	ports := make([]int, 8)
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	s := &S3{
		Endpoint:  "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[6])),
		Region:    s3Region,
		AccessKey: s3AccessKey,
		SecretKey: s3SecretKey,
		Dir:       dir,
	}
	identities := map[string]any{"identities": []any{map[string]any{
		"name":        "quiver",
		"credentials": []any{map[string]string{"accessKey": s.AccessKey, "secretKey": s.SecretKey}},
		"actions":     []string{"Admin", "Read", "List", "Tagging", "Write"},
	}}}
	conf, _ := json.Marshal(identities)
	confPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, err
	}
	// weed reads master.toml from its working directory: one volume per new bucket instead of
	// seven (a bucket is a collection with volumes of its own), no maintenance scripts.
	if err := os.WriteFile(filepath.Join(dir, "master.toml"), []byte(weedMasterTOML), 0o644); err != nil {
		return nil, err
	}
	port := func(i int) string { return strconv.Itoa(ports[i]) }
	args := []string{
		"server",
		"-dir=" + data,
		"-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + port(0), "-master.port.grpc=" + port(1),
		"-master.telemetry=false",
		"-master.volumeSizeLimitMB=" + strconv.Itoa(s3VolumeLimitMB),
		"-volume.port=" + port(2), "-volume.port.grpc=" + port(3),
		"-volume.max=0", // as many volumes as the disk holds (free space / volume size)
		"-volume.preStopSeconds=0",
		"-filer", "-filer.port=" + port(4), "-filer.port.grpc=" + port(5),
		"-filer.localSocket=" + filepath.Join(dir, "filer.sock"),
		"-s3", "-s3.port=" + port(6), "-s3.port.grpc=" + port(7),
		"-s3.config=" + confPath,
		"-s3.localSocket=" + filepath.Join(dir, "s3.sock"),
		"-s3.port.iceberg=0", "-s3.port.lance=0",
	}
	p, err := startProcess("weed server", bin, args, processOptions{
		Dir: dir, Log: filepath.Join(dir, "weed.log"), Detached: detached,
		// weed server's graceful stop retries volume growth for a while; its data is throwaway.
		StopGrace: 2 * time.Second,
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

const weedMasterTOML = `[master.maintenance]
scripts = ""
sleep_minutes = 17

[master.volume_growth]
copy_1 = 1
copy_2 = 1
copy_3 = 1
copy_other = 1
`

// probe creates (or finds) a bucket and writes an object in it: the gateway, the filer, its
// lock ring and a writable volume all answer. (The filer joins the lock ring some seconds
// after the gateway listens; writes wait for it.)
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

// Client returns an S3 client for the server: static credentials, path-style addressing.
func (s *S3) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		UsePathStyle: true,
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
		"fs.native-s3.enabled": "true",
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
