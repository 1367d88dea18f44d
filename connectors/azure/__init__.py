"""Azure connectors: Microsoft Sentinel (Logs Ingestion API rows, SecurityInsights incidents)."""
