"""The event gateway (`wia-security serve`): an ASGI app that ingests WIA events over HTTP, stores and fans them out, and streams them.

    POST /v1/events                      JSON object, array or NDJSON -> per-event results
    GET  /v1/events                      query the embedded store
    POST /services/collector[/event]     Splunk-HEC-compatible ingest (Authorization: Splunk <token>)
    GET  /v1/stream                      WebSocket stream: subscribe/unsubscribe with filters, resume
    GET  /taxii2/ ...                    TAXII 2.1 server over the stored threat intel
    GET  /metrics                        Prometheus text format 0.0.4 (a gateway or metrics token)
    GET  /healthz                        liveness (no auth)

Built on Starlette (routing, requests, WebSockets) and served by uvicorn. The wire protocols are
documented in docs/connectors/gateway.md. Importing this package needs the `server` extra.
"""
from .app import Gateway, create_app
from .settings import GatewaySettings, load_tokens

__all__ = ["Gateway", "GatewaySettings", "create_app", "load_tokens"]
