"""The HTTP face: routes, request and response schemas, authentication, error handlers."""
