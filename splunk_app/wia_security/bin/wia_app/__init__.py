"""The WIA Security Splunk app's own code: modular input, alert action and their splunkd helpers.

Entry scripts (bin/wia_events.py, bin/wia_send_event.py) put bin/lib (the vendored wia_security
core and connectors) on sys.path first, then call into this package.
"""
APP = "wia_security"
#: storage/passwords realm of every secret the app stores (setup page, inputs, alert action)
REALM = "wia_security"
