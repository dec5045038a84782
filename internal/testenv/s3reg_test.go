package testenv

// iceberg-go's S3 file IO registers itself on import; TestTrinoIcebergOnS3 reads and writes
// Iceberg tables in an S3Proxy bucket through it.
import _ "github.com/apache/iceberg-go/io/gocloud/s3"
