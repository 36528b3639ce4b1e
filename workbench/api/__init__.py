"""The API transport: HTTP clients, wire formats, providers, credentials and rate limits."""
