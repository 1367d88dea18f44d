"""Stand-in for XSOAR's `CommonServerPython` (not on PyPI): the subset the WIA Security integration uses,
with the real module's semantics for it.

BaseClient._http_request: requests with the client's base URL, headers, auth, verify and proxy;
a non-2xx answer raises DemistoException("Error in API call [status] - reason\\n body"); resp_type
"json" (default) returns the parsed body, "response" the Response. CommandResults keeps
outputs_prefix/outputs_key_field/outputs/readable_output/raw_response and `to_context()` builds the
entry context key the way XSOAR does (`Prefix(val.Key && val.Key == obj.Key)`). return_results
sends a CommandResults' entry (or a plain string) to demisto.results; return_error records an error
entry and raises SystemExit as the real one exits the script.
"""
from __future__ import annotations

from typing import Any

import requests

import demistomock as demisto


class DemistoException(Exception):
    pass


class EntryType:
    NOTE = 1
    ERROR = 4


class EntryFormat:
    JSON = "json"
    MARKDOWN = "markdown"


class BaseClient:
    def __init__(self, base_url: str, verify: bool = True, proxy: bool = False, ok_codes: tuple = (),
                 headers: dict | None = None, auth: Any = None, timeout: float = 60) -> None:
        self._base_url = base_url
        self._verify = verify
        self._ok_codes = ok_codes
        self._headers = headers or {}
        self._auth = auth
        self._session = requests.Session()
        self.timeout = timeout
        if not proxy:
            self._session.trust_env = False

    def _http_request(self, method: str, url_suffix: str = "", full_url: str | None = None, headers: dict | None = None,
                      auth: Any = None, json_data: Any = None, params: dict | None = None, data: Any = None,
                      resp_type: str = "json", ok_codes: tuple | None = None, timeout: float | None = None, **kwargs: Any) -> Any:
        url = full_url or (self._base_url + url_suffix)
        response = self._session.request(method, url, headers=headers if headers is not None else self._headers,
                                         auth=auth or self._auth, json=json_data, params=params, data=data,
                                         verify=self._verify, timeout=timeout or self.timeout)
        codes = ok_codes or self._ok_codes
        if (codes and response.status_code not in codes) or (not codes and not response.ok):
            raise DemistoException(f"Error in API call [{response.status_code}] - {response.reason}\n{response.text}")
        if resp_type == "response":
            return response
        if resp_type == "text":
            return response.text
        return response.json() if response.content else {}


class CommandResults:
    def __init__(self, outputs_prefix: str | None = None, outputs_key_field: Any = None, outputs: Any = None,
                 readable_output: str | None = None, raw_response: Any = None, **kwargs: Any) -> None:
        self.outputs_prefix = outputs_prefix
        self.outputs_key_field = outputs_key_field
        self.outputs = outputs
        self.readable_output = readable_output
        self.raw_response = raw_response

    def to_context(self) -> dict[str, Any]:
        key = self.outputs_prefix or ""
        fields = self.outputs_key_field
        if fields:
            fields = [fields] if isinstance(fields, str) else list(fields)
            key += "(" + " && ".join(f"val.{f} && val.{f} == obj.{f}" for f in fields) + ")"
        return {"Type": EntryType.NOTE, "ContentsFormat": EntryFormat.JSON, "Contents": self.raw_response,
                "HumanReadable": self.readable_output, "EntryContext": {key: self.outputs} if key else {}}


def return_results(results: Any) -> None:
    if isinstance(results, CommandResults):
        demisto.results(results.to_context())
    elif isinstance(results, list):
        for item in results:
            return_results(item)
    else:
        demisto.results(results)


def return_error(message: str, error: Any = "", outputs: Any = None) -> None:
    demisto.error(message)
    demisto.results({"Type": EntryType.ERROR, "ContentsFormat": "text", "Contents": message})
    raise SystemExit(0)


def argToList(arg: Any, separator: str = ",") -> list:  # noqa: N802
    if not arg:
        return []
    if isinstance(arg, list):
        return arg
    if isinstance(arg, str) and arg.startswith("["):
        import json
        return json.loads(arg)
    return [s.strip() for s in str(arg).split(separator) if s.strip()]


def argToBoolean(value: Any) -> bool:  # noqa: N802
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "yes"):
        return True
    if isinstance(value, str) and value.lower() in ("false", "no"):
        return False
    raise ValueError("Argument does not contain a valid boolean-like value")


def arg_to_number(arg: Any, arg_name: str | None = None, required: bool = False) -> int | None:
    if arg in (None, ""):
        if required:
            raise ValueError(f"Missing \"{arg_name}\"")
        return None
    if isinstance(arg, str) and arg.isdigit():
        return int(arg)
    if isinstance(arg, (int, float)):
        return int(arg)
    raise ValueError(f"Invalid number: \"{arg_name}\"=\"{arg}\"")


def stringEscapeMD(st: str, minimal_escaping: bool = False, escape_multiline: bool = False) -> str:  # noqa: N802
    """The real one's rules: line breaks become <br> (escape_multiline); `|` alone is escaped (minimal_escaping),
    else every character of MARKDOWN_CHARS."""
    if escape_multiline:
        st = st.replace("\r\n", "<br>").replace("\r", "<br>").replace("\n", "<br>")
    special = "|" if minimal_escaping else "\\`*_{}[]()#+-!|"
    return "".join("\\" + c if c in special else c for c in st)


def tableToMarkdown(name: str, t: Any, headers: list | None = None, **kwargs: Any) -> str:  # noqa: N802
    """As the real one: the name is written as given; each cell escaped with stringEscapeMD(cell, True, True) (its `|`
    and line breaks only: a link or an image in a cell stays markdown); None is an empty cell."""
    rows = t if isinstance(t, list) else [t] if t else []
    headers = headers or (list(rows[0].keys()) if rows else [])
    lines = [f"### {name}"]
    if not rows:
        return lines[0] + "\n**No entries.**\n"
    lines.append("|" + "|".join(headers) + "|")
    lines.append("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        cells = ("" if row.get(h) is None else stringEscapeMD(str(row.get(h)), True, True) for h in headers)
        lines.append("|" + "|".join(cells) + "|")
    return "\n".join(lines) + "\n"


def register_module_line(module_name: str, start_end: str, line: int, wrapper: int = 0) -> None:
    """Unified scripts call this to map line numbers back to their source module; nothing to do here."""


def __line__() -> int:
    import inspect
    frame = inspect.currentframe()
    return frame.f_back.f_lineno if frame and frame.f_back else 0
