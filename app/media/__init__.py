"""Media: uploads, storage and its backends, signed URLs, the sweep, the address guard."""
