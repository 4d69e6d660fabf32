"""Observability: request ids carried into every log line (the job's too), plain or JSON logs,
and Prometheus metrics for the API (multiprocess-safe under gunicorn) and the workers (each
on its own port). Nothing here imports Flask at module level except :mod:`.http`."""
