"""Media fetching: downloads under the address guard, sharing links, the media store."""
