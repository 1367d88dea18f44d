"""Threat-intelligence connectors: MISP (pymisp) pull and push, VirusTotal (vt-py) enrichment, AlienVault OTX
subscribed pulses; plus the shared observable extraction and the enrichment cache."""
