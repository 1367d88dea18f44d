"""SOAR connectors: Splunk SOAR (Phantom) containers over its REST API, Cortex XSOAR incidents through demisto-py.

`mapping` holds what both share: severity bands per product, the CEF fields and indicator
artifacts of an event, and the XSOAR incident fields of the WIA Security content pack.
"""
