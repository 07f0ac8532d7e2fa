"""The Responses dialect: the upstream's own, so events pass through as bytes."""
