"""S3 on openmwaa's endpoint: buckets are directories, older object versions are kept beside them."""
