"""HTTP resources: one module per surface, plus health checks."""
