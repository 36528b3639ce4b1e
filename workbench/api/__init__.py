"""The API transport: HTTP client, wire formats, providers, credentials, limits."""
