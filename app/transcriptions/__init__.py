"""Transcriptions: the service behind the routes, the pipelines catalog, languages, exports,
the job queue."""
