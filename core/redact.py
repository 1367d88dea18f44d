"""Secret values this process has been given are masked in every delivery error and rejection reason.

A server that answers an error by echoing the request (the API key in its error body, the token in a
quoted header) would otherwise carry the secret through the error text into logs and dead-letter
files. Connectors register each credential they are given (`connectors.config.Secret` does so when
made, `reveal()` for plain strings); `DeliveryError`, `Outcome` and `Rejected` mask what they carry.

Log records are masked too, whoever logs them: client libraries log what they send and receive (pymisp
logs its request headers, the API key among them, at DEBUG, and an error body that echoes the key at
ERROR, which reaches stderr with no logging configured). Once a secret is known, a log-record factory
masks the message, the traceback and the stack of every record a logger creates.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
from typing import Any, Iterable, Mapping
from urllib.parse import quote, quote_plus, unquote

MASK = "<redacted>"
#: Shorter values are not masked: replacing "1" or "admin" everywhere would garble messages, and no
#: credential worth the name is that short.
MIN_CHARS = 8

_lock = threading.Lock()
_known: set[str] = set()
_forms: tuple[str, ...] = ()         # every form of every known secret, longest first
_scrubbing_logs = False


def remember(secret: Any) -> None:
    """Mask `secret` from now on: as is, URL-quoted, JSON-escaped and as Python's repr shows it (the forms
    an echo or a library's message takes: requests quotes a header value it refuses with !r)."""
    global _forms, _scrubbing_logs
    if not isinstance(secret, str) or len(secret) < MIN_CHARS or secret in _known:
        return
    with _lock:
        _known.add(secret)
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], repr(secret)[1:-1]}
        _forms = tuple(sorted(set(_forms) | forms, key=len, reverse=True))
        if not _scrubbing_logs:
            _scrubbing_logs = True
            _install_log_scrubber()


def remember_basic_auth(user: Any, password: Any) -> None:
    """Mask HTTP Basic credentials: the password, `user:password`, and its base64 as `Authorization: Basic`
    carries it (UTF-8, and Latin-1 as requests encodes it), so an echoed request header is masked too. The
    pair and its base64 are masked even when the password alone is too short to be: they give it away."""
    if not isinstance(password, str) or not password:
        return
    remember(password)
    pair = f"{user or ''}:{password}"
    remember(pair)
    for encoding in ("utf-8", "latin-1"):
        try:
            remember(base64.b64encode(pair.encode(encoding)).decode("ascii"))
        except UnicodeEncodeError:      # not Latin-1: requests could not send it that way either
            pass


def proxy_urls(environ: Mapping[str, str] | None = None) -> list[str]:
    """The proxy URLs of `environ` (default os.environ): every `<scheme>_proxy` variable, upper or lower case
    (HTTPS_PROXY, http_proxy, ALL_PROXY, ...), as urllib's getproxies() reads them; requests, aiohttp with
    trust_env, botocore, azure-core and websockets take their proxy from there. NO_PROXY is a host list."""
    environ = os.environ if environ is None else environ
    return [value for name, value in environ.items()
            if name.lower().endswith("_proxy") and name.lower() != "no_proxy" and isinstance(value, str) and value]


def proxy_credentials(urls: Iterable[Any] | str | Mapping[str, Any] | None = None) -> list[str]:
    """Every form the credentials of proxy URLs take on their way into a message: `user:password` and the
    password as written in the URL (percent-encoded) and decoded, and the base64 of the decoded pair as
    `Proxy-Authorization: Basic` carries it (UTF-8, and Latin-1 as requests encodes it). A user without a
    password is itself the credential (a token as user name). `urls`: one URL, URLs, a `proxies` mapping
    (requests', azure-core's: scheme -> URL), or None for the environment's (`proxy_urls()`). Forms shorter than
    MIN_CHARS are left out, as remember() leaves them: the Splunk app and the XSOAR pack mask these forms with their
    own maskers, which would otherwise mask a short password ("events") in every message. User info too short to be
    masked alone (a 6-character token as user name) is masked with the proxy address it is written with
    (`tok123@proxy:3128`): that text is only ever the proxy URL quoted, never unrelated text. When the user info
    holds a raw "/", "?" or "#", RFC 3986 readers (urllib3 for requests) end the authority there and quote what
    came before in their parse error ("Failed to parse: 'user:S3cret' ..."): that start is masked too when it
    holds part of the password and cannot be a host:port (`http://proxy:3128/a@b` keeps `proxy:3128` readable)."""
    if urls is None:
        urls = proxy_urls()
    elif isinstance(urls, str):
        urls = [urls]
    elif isinstance(urls, Mapping):
        urls = list(urls.values())
    forms: list[str] = []
    for url in urls:
        user, password, hostport = _userinfo(url) if isinstance(url, str) else (None, None, "")
        if user is None:
            continue
        userinfo = f"{user}:{password}" if password is not None else user
        secrets = {userinfo, password} if password is not None else {user}
        pair = f"{unquote(user)}:{unquote(password or '')}"
        secrets |= {unquote(s) for s in secrets}
        if len(userinfo) < MIN_CHARS:
            secrets |= {f"{userinfo}@{hostport}", f"{unquote(userinfo)}@{hostport}"}
        rfc_authority = _before_delimiter(userinfo)
        _, colon, port = rfc_authority.partition(":")
        if rfc_authority != userinfo and colon and port and not port.isdigit():    # never a real host:port
            secrets.add(rfc_authority)
        for encoding in ("utf-8", "latin-1"):
            try:
                secrets.add(base64.b64encode(pair.encode(encoding)).decode("ascii"))
            except UnicodeEncodeError:      # not Latin-1: requests could not send it that way either
                pass
        forms += sorted(s for s in secrets if len(s) >= MIN_CHARS and s not in forms)
    return forms


def remember_proxy_credentials(urls: Iterable[Any] | str | Mapping[str, Any] | None = None) -> None:
    """Mask the credentials of proxy URLs (default: the environment's *_PROXY variables) from now on.
    Client libraries quote a proxy URL whole in their errors (websockets' InvalidProxy), the
    Proxy-Authorization header in a repr (aiohttp's ClientHttpProxyError), and a proxy's refusal page
    may echo what it was sent."""
    for form in proxy_credentials(urls):
        remember(form)


#: a scheme as RFC 3986 spells it, followed by "//": `user:pa://ss@proxy` has none ("user:pa" is no scheme name)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _userinfo(url: str) -> tuple[str | None, str | None, str]:
    """(user, password, host:port) as written in `url` (percent-encoded), password None when absent; user None
    without user info. The scheme is only a scheme name followed by "://", so a scheme-less URL whose password
    holds "://" (`user:pa://ss@proxy:3128`) is read as urllib reads it. The authority ends at the first "/", "?"
    or "#" after its first "@" (RFC 3986 ends it at the first one, as urllib3, curl and urllib.parse do: an "@"
    in the path or query, `http://u:pw@proxy:3128/a@b`, is not user info); one before the first "@" is taken as
    part of a raw password (`http://u:pa/ss@proxy:3128`), as urllib.request reads and sends it. The user info is
    what comes before the authority's last "@" (a raw "@" in a password, as urllib and urllib3 read it).
    Undecidable, and read as user info: a raw "@" in a password followed by a raw "/", "?" or "#", and a URL
    without credentials whose path holds an "@" (`http://proxy:3128/a@b`, urllib.request reads it so too)."""
    text = url.strip()
    scheme = _SCHEME.match(text)
    rest = text[scheme.end():] if scheme else text
    first_at = rest.find("@")
    if first_at < 0:
        return None, None, ""
    ends = [i for i in (rest.find(c, first_at) for c in "/?#") if i >= 0]
    userinfo, _, hostport = rest[:min(ends, default=len(rest))].rpartition("@")
    user, colon, password = userinfo.partition(":")
    return user, (password if colon else None), hostport


def _before_delimiter(userinfo: str) -> str:
    """`userinfo` up to its first raw "/", "?" or "#": where an RFC 3986 reader ends the authority."""
    ends = [i for i in (userinfo.find(c) for c in "/?#") if i >= 0]
    return userinfo[:min(ends, default=len(userinfo))]


def redact(text: str) -> str:
    """`text` with every known secret replaced by MASK."""
    for form in _forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value (an error document) with every string redacted; as is when nothing is known."""
    if not _forms:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else k: redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v) for v in value]
    return value


def _install_log_scrubber() -> None:
    """Mask known secrets in every log record from now on: a record factory, so records of child loggers
    (urllib3.connectionpool, azure.core...) and records handled by any handler (pytest's, the Functions
    host's, Python's last-resort stderr one) are all covered. The factory in place before is kept."""
    make_record = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if _forms:
            _mask_record(record)
        return record

    logging.setLogRecordFactory(masked_record)


def _mask_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is the handler's to report, as logging does
        return
    masked = redact(message)
    if masked != message:
        record.msg, record.args = masked, None        # formatted once here, so the handler cannot undo it
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        masked = redact(text)
        if masked != text:
            record.exc_text = masked                  # Formatter.format uses exc_text when it is set
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def forget_all() -> None:
    """Forget every secret (tests)."""
    global _forms
    with _lock:
        _known.clear()
        _forms = ()
