"""Which optional extra (`pip install 'wia-security[NAME]'`) brings a third-party package a feature lacks."""
from __future__ import annotations

#: top-level import name -> the extra in pyproject.toml that installs it (requests is in several: callers
#: that know the feature pass its extra)
PACKAGE_EXTRAS: dict[str, str] = {
    "opensearchpy": "elastic", "elasticsearch": "elastic", "elastic_transport": "elastic",
    "confluent_kafka": "kafka", "boto3": "aws", "botocore": "aws", "azure": "azure", "google": "gcp",
    "grpc": "gcp", "functions_framework": "gcp", "taxii2client": "taxii", "stix2": "taxii", "pymisp": "misp",
    "vt": "intel", "starlette": "server", "uvicorn": "server", "websockets": "server",
    "demisto_client": "soar", "splunklib": "splunk", "orjson": "speedups",
}


def missing_package(exc: ModuleNotFoundError, extra: str | None = None) -> str | None:
    """The sentence telling a user what to install for `exc`, or None when the missing module is part
    of this package (a broken installation, not a missing extra: the traceback is the useful part)."""
    top = (exc.name or "").partition(".")[0]
    if not top or top == "wia_security":
        return None
    extra = extra or PACKAGE_EXTRAS.get(top, "all")
    return f"the Python package {top!r} is not installed; pip install 'wia-security[{extra}]'"
