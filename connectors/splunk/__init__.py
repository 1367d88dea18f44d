"""Splunk connectors: the HTTP Event Collector sink (`hec`, hand-written HTTP: no SDK covers HEC) and the
search source (`search`, on splunk-sdk). Imported on use, so the sink needs only `requests`."""
