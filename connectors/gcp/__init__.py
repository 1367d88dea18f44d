"""Google Cloud connectors: Security Command Center findings (v2 API)."""
