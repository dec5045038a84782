package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"
)

// TestStartS3 makes one round trip through the real S3 server (S3Proxy) with aws-sdk-go-v2,
// path-style and signed: put (single and multipart), list, get, delete (DeleteObjects).
func TestStartS3(t *testing.T) {
	srv := StartS3(t)
	ctx := context.Background()
	c := srv.Client()
	bucket := srv.NewBucket(t)

	small := []byte("hello, quiver")
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("warehouse/a.txt"), Body: bytes.NewReader(small)})
	require.NoError(t, err)

	// A multipart upload of two parts (5 MiB is S3's minimum for all but the last part).
	big := make([]byte, 5<<20+1234)
	_, _ = rand.Read(big)
	mp, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String("warehouse/b.bin")})
	require.NoError(t, err)
	var parts []s3types.CompletedPart
	for i, chunk := range [][]byte{big[:5<<20], big[5<<20:]} {
		n := int32(i + 1)
		up, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(bucket), Key: aws.String("warehouse/b.bin"), UploadId: mp.UploadId,
			PartNumber: aws.Int32(n), Body: bytes.NewReader(chunk),
		})
		require.NoError(t, err)
		parts = append(parts, s3types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(n)})
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(bucket), Key: aws.String("warehouse/b.bin"), UploadId: mp.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
	})
	require.NoError(t, err)

	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("warehouse/")})
	require.NoError(t, err)
	var keys []string
	sizes := map[string]int64{}
	for _, o := range list.Contents {
		keys = append(keys, aws.ToString(o.Key))
		sizes[aws.ToString(o.Key)] = aws.ToInt64(o.Size)
	}
	sort.Strings(keys)
	require.Equal(t, []string{"warehouse/a.txt", "warehouse/b.bin"}, keys)
	require.Equal(t, int64(len(big)), sizes["warehouse/b.bin"])

	for key, want := range map[string][]byte{"warehouse/a.txt": small, "warehouse/b.bin": big} {
		got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		require.NoError(t, err)
		b, err := io.ReadAll(got.Body)
		got.Body.Close()
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, b), "%s: read back %d bytes, want %d", key, len(b), len(want))
	}

	require.NoError(t, EmptyBucket(ctx, c, bucket))
	list, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	require.NoError(t, err)
	require.Empty(t, list.Contents)

	// Requests signed with another secret are refused: the gateway checks signatures.
	bad := s3.New(s3.Options{BaseEndpoint: aws.String(srv.Endpoint), Region: srv.Region, UsePathStyle: true,
		Credentials: aws.NewCredentialsCache(staticCreds{srv.AccessKey, "wrong-secret"})})
	_, err = bad.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	require.Error(t, err)
}

type staticCreds struct{ id, secret string }

func (c staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.id, SecretAccessKey: c.secret}, nil
}
