"""Materials: uploads, the ingestion pipeline and its jobs, the course index, file storage, file links, evaluation."""
