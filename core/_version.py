"""The one version string every artefact (wheel, Splunk app, XSOAR pack, function zips) is stamped with."""
__version__ = "0.1.0"

#: Version of the WIA Security standard this package implements.
WIA_VERSION = "1.0.0"
#: The `$schema` value builders set, as the standard's envelope schema `$id` gives it.
WIA_SCHEMA_URI = "https://wia.live/security/v1/schema.json"
