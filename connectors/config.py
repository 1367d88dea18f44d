"""Destinations from a TOML file (`wia-security forward --config wia.toml`), and secrets by reference.

Secrets never appear as literals in a config file or URL: a key `<name>_env = "VAR"` reads the
environment variable VAR, `<name>_file = "/run/secrets/x"` reads a file (trailing newline removed);
either becomes option `<name>` holding a `Secret`, whose str/repr is redacted. A literal value under
a secret-looking key (token, password, api_key, secret, ...) is refused with a ConfigError that
names the key, never the value. The file format is documented in docs/connectors/delivery.md.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any, Mapping

from wia_security.errors import ConfigError, UnknownFormatError
from wia_security.redact import remember, remember_proxy_credentials

from .delivery.policy import DeliveryPolicy

#: Option names (or name endings) that hold credentials.
SECRET_WORDS = ("token", "password", "passwd", "secret", "api_key", "apikey", "access_key", "private_key",
                "client_secret", "passphrase", "credentials")
#: Option names that hold a credential only as the whole name (MISP's `key`): as an ending, "key" would
#: take in names such as sort_key.
SECRET_NAMES = ("key",)
#: Top-level tables of the config file.
CONFIG_TABLES = ("forward", "delivery", "destinations")
FORWARD_KEYS = ("dead_letter", "batch_size", "lenient")


class Secret:
    """A credential: `reveal()` gives the value; str/repr show only where it came from."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str = "literal") -> None:
        self._value = value
        self.origin = origin
        remember(value)                      # masked in every error and dead-letter reason from now on

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<redacted>, from {self.origin})"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def reveal(value: "Secret | str | None") -> str | None:
    """The plain value of a Secret or str (for the one place that sends it); a plain str is remembered
    for masking as a Secret is."""
    if isinstance(value, Secret):
        return value.reveal()
    remember(value)
    return value


def is_secret_key(key: str) -> bool:
    k = key.lower()
    return k in SECRET_NAMES or any(k == w or k.endswith("_" + w) or k.endswith(w) for w in SECRET_WORDS)


def resolve_options(options: Mapping[str, Any], *, source: str | None = None,
                    allow_literal_secrets: bool = False) -> dict[str, Any]:
    """Options with `<k>_env` / `<k>_file` replaced by `<k>` = Secret(...).

    Literal values under secret keys are refused unless `allow_literal_secrets` (Python callers
    passing a value they already hold); strings are then wrapped in Secret too."""
    resolved: dict[str, Any] = {}
    for key, value in options.items():
        if key.endswith("_env") and len(key) > 4:
            name = key[:-4]
            if not isinstance(value, str) or not value:
                raise ConfigError("must name an environment variable", key=key, source=source)
            if value not in os.environ:
                raise ConfigError(f"environment variable {value} is not set", key=key, source=source)
            resolved[name] = Secret(os.environ[value], f"env {value}")
        elif key.endswith("_file") and len(key) > 5 and is_secret_key(key[:-5]):
            name = key[:-5]
            if not isinstance(value, str) or not value:
                raise ConfigError("must be a file path", key=key, source=source)
            try:
                # utf-8-sig: a file saved by Notepad starts with a byte-order mark, which is no part of the secret
                with open(os.path.expanduser(value), encoding="utf-8-sig") as fh:
                    text = fh.read().rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(f"cannot read secret file {value}: {exc.strerror}", key=key, source=source) from None
            if not text:
                raise ConfigError(f"secret file {value} is empty", key=key, source=source)
            resolved[name] = Secret(text, f"file {value}")
        elif is_secret_key(key) and not isinstance(value, Secret):
            if not allow_literal_secrets:
                raise ConfigError(f"secrets are not accepted as literals here; use {key}_env = \"VAR\" "
                                  f"or {key}_file = \"/path\"", key=key, source=source)
            resolved[key] = Secret(str(value), "argument") if value is not None else None
        else:
            resolved[key] = value
    for name in resolved:
        if name in options and (name + "_env" in options or name + "_file" in options):
            raise ConfigError("given twice (literal and by reference)", key=name, source=source)
    return resolved


@dataclass
class Destination:
    name: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)       # secrets resolved
    delivery: DeliveryPolicy | None = None                       # None: the sink's defaults

    def open(self) -> Any:
        """The sink for this destination (BatchingSink subclasses get the delivery policy)."""
        from . import SINKS, _redact, raise_missing_package, scheme_of
        from .delivery.batching import BatchingSink
        import importlib

        remember_proxy_credentials()     # HTTPS_PROXY & co.: the sink's client library reads them
        scheme = scheme_of(self.url)
        if scheme not in SINKS:
            raise ConfigError(f"unknown destination scheme {scheme!r}; known: {', '.join(sorted(SINKS))}",
                              key=f"destinations.{self.name}.url", source=_redact(self.url))
        module_name, class_name = SINKS[scheme].split(":")
        where = f"destinations.{self.name}"
        try:
            cls = getattr(importlib.import_module(f"{__package__}.{module_name}"), class_name)
        except ModuleNotFoundError as exc:
            raise_missing_package(exc, scheme, key=f"{where}.url", source=_redact(self.url))
            raise
        options = dict(self.options)
        if isinstance(cls, type) and issubclass(cls, BatchingSink):
            if self.delivery is not None:
                options["delivery"] = self.delivery
        try:
            return cls.from_url(self.url, **options)
        except ModuleNotFoundError as exc:
            raise_missing_package(exc, scheme, key=f"{where}.url", source=_redact(self.url))
            raise
        except UnknownFormatError as exc:
            raise ConfigError(str(exc), key=f"{where}.format") from None
        except ConfigError as exc:          # name the destination as well as the key
            raise ConfigError(exc.reason, key=f"{where}.{exc.key}" if exc.key else where, source=exc.source) from None
        except TypeError as exc:            # a key the sink's constructor does not take
            match = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
            if match is None:
                raise
            raise ConfigError(f"unknown option for the {scheme} destination; known: {', '.join(_keywords(cls))} and "
                              f"the delivery keys", key=f"{where}.{match.group(1)}") from None


#: constructor keywords that are Python plumbing, not options of a config file
_PLUMBING = frozenset({"self", "url", "host", "port", "transport", "delivery", "dead_letter", "name", "sleep", "clock",
                       "client", "client_options", "options", "machinery"})


def _keywords(cls: Any) -> list[str]:
    """The options a sink class's constructor takes (an unknown one was given), for the error message."""
    import inspect
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [f"{p.name}_env / {p.name}_file" if is_secret_key(p.name) else p.name for p in parameters
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _PLUMBING]


@dataclass
class Config:
    path: str
    destinations: list[Destination]
    forward: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Any:
        """A FanOut over every destination (closing what was opened if one fails to open)."""
        from .delivery.fanout import FanOut
        opened: dict[str, Any] = {}
        try:
            for d in self.destinations:
                opened[d.name] = d.open()
        except BaseException as exc:
            for sink in opened.values():
                sink.close()
            if isinstance(exc, ConfigError) and exc.source != self.path:
                # the file first, then the destination's URL a sink named (its errors name scheme://host)
                where = f"{self.path} ({exc.source})" if exc.source else self.path
                raise ConfigError(exc.reason, key=exc.key, source=where) from None
            raise
        return FanOut(opened)


def load_config(path: str) -> Config:
    """Read and check a config file; every problem is a ConfigError naming the file and key."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", source=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=path) from None
    return parse_config(data, source=path)


def parse_config(data: Mapping[str, Any], *, source: str = "<config>") -> Config:
    unknown = set(data) - set(CONFIG_TABLES)
    if unknown:
        raise ConfigError(f"unknown table(s) {', '.join(sorted(unknown))}; known: {', '.join(CONFIG_TABLES)}",
                          key=sorted(unknown)[0], source=source)
    forward = _table(data, "forward", source)
    bad = set(forward) - set(FORWARD_KEYS)
    if bad:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(bad))}; known: {', '.join(FORWARD_KEYS)}",
                          key="forward." + sorted(bad)[0], source=source)
    size = forward.get("batch_size", 1)
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:         # true is an int to Python
        raise ConfigError(f"must be an integer >= 1, got {size!r}", key="forward.batch_size", source=source)
    if "dead_letter" in forward and not isinstance(forward["dead_letter"], str):
        raise ConfigError("must be a path or URL string", key="forward.dead_letter", source=source)
    if "dead_letter" in forward:
        _check_sqlite_url(forward["dead_letter"].removeprefix("sink+"), "forward.dead_letter", source)
    if "lenient" in forward and not isinstance(forward["lenient"], bool):
        raise ConfigError("must be true or false", key="forward.lenient", source=source)
    base_delivery_table = _table(data, "delivery", source)
    base_delivery = DeliveryPolicy.from_mapping(base_delivery_table, source=source) if base_delivery_table else None
    tables = _table(data, "destinations", source)
    if not tables:
        raise ConfigError("no destinations: add a [destinations.NAME] table with a url", source=source)
    destinations = []
    for name, table in tables.items():
        where = f"destinations.{name}"
        if not isinstance(table, dict):
            raise ConfigError("must be a table", key=where, source=source)
        table = dict(table)
        enabled = table.pop("enabled", True)
        if not isinstance(enabled, bool):            # "false" in quotes left the destination on
            raise ConfigError(f"must be true or false (no quotes), got {enabled!r}", key=f"{where}.enabled",
                              source=source)
        if not enabled:
            continue
        url = table.pop("url", None)
        if not isinstance(url, str) or not url:
            raise ConfigError("needs a url, e.g. url = \"splunk+https://splunk.example.com:8088\"",
                              key=f"{where}.url", source=source)
        _check_sqlite_url(url, f"{where}.url", source)
        delivery_table = table.pop("delivery", None)
        if delivery_table is not None and not isinstance(delivery_table, dict):
            raise ConfigError("must be a table", key=f"{where}.delivery", source=source)
        delivery = base_delivery
        if delivery_table:
            delivery = DeliveryPolicy.from_mapping(delivery_table, base=base_delivery, source=f"{source}: {where}")
        options = resolve_options(table, source=f"{source}: {where}")
        destinations.append(Destination(name, url, options, delivery))
    if not destinations:
        raise ConfigError("every destination is disabled", key="destinations", source=source)
    return Config(source, destinations, forward)


def _check_sqlite_url(url: str, key: str, source: str) -> None:
    """A sqlite: URL with a query string or fragment, refused when the file is read (the store would ignore
    them), with the key that holds it."""
    from .delivery.sqlite_url import is_sqlite_url, sqlite_url_problem
    problem = sqlite_url_problem(url) if is_sqlite_url(url) else None
    if problem:
        raise ConfigError(problem, key=key, source=source)


def _table(data: Mapping[str, Any], key: str, source: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError("must be a table", key=key, source=source)
    return value
