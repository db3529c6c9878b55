"""An existing S3 (AWS S3, MinIO, SeaweedFS, ...) as the environments' source, mirrored locally."""
