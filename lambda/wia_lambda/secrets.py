"""Secrets from AWS Secrets Manager and SSM Parameter Store, never from plain environment variables.

A destination option `<key>_secretsmanager = "<secret ARN or name>[#<json key>]"` or
`<key>_ssm = "<parameter name>"` becomes option `<key>` holding a `Secret`. Environment variables
and the config hold only these references. Values are fetched once per container and re-fetched
after `WIA_SECRETS_TTL` seconds (default 300), so rotation is picked up.
"""
from __future__ import annotations

import json
from typing import Any

from wia_security.connectors.config import Secret, is_secret_key
from wia_security.errors import ConfigError

from .logs import redact

SECRETSMANAGER_SUFFIX = "_secretsmanager"
SSM_SUFFIX = "_ssm"


def fetch_secretsmanager(reference: str, client: Any) -> str:
    secret_id, _, json_key = reference.partition("#")
    value = client.get_secret_value(SecretId=secret_id)
    text = value.get("SecretString")
    if text is None:
        raise ConfigError("binary secrets are not supported; store a string", key=secret_id)
    if json_key:
        try:
            text = json.loads(text)[json_key]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"the secret is not a JSON object with key {json_key!r}", key=secret_id) from None
    return str(text)


def fetch_ssm(name: str, client: Any) -> str:
    return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def resolve(options: dict[str, Any], *, where: str, clients: Any) -> dict[str, Any]:
    """Options with `*_secretsmanager` / `*_ssm` references replaced by Secrets; `*_env` / `*_file`
    references to secrets refused (a Lambda keeps secrets in Secrets Manager or SSM only)."""
    resolved: dict[str, Any] = {}
    for key, value in options.items():
        if key.endswith(SECRETSMANAGER_SUFFIX) or key.endswith(SSM_SUFFIX):
            name = key[: -len(SECRETSMANAGER_SUFFIX)] if key.endswith(SECRETSMANAGER_SUFFIX) else key[: -len(SSM_SUFFIX)]
            if not isinstance(value, str) or not value:
                raise ConfigError("must name a secret (ARN or name)", key=key, source=where)
            try:
                text = (fetch_secretsmanager(value, clients.client("secretsmanager")) if key.endswith(SECRETSMANAGER_SUFFIX)
                        else fetch_ssm(value, clients.client("ssm")))
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - name the reference, never a value
                raise ConfigError(f"cannot read {value}: {type(exc).__name__}", key=key, source=where) from None
            redact(text)
            resolved[name] = Secret(text, f"{'secretsmanager' if key.endswith(SECRETSMANAGER_SUFFIX) else 'ssm'} {value}")
        elif (key.endswith("_env") or key.endswith("_file")) and is_secret_key(key.rsplit("_", 1)[0]):
            base = key.rsplit("_", 1)[0]
            raise ConfigError(f"in the Lambda forwarder secrets come from Secrets Manager or SSM: use "
                              f"{base}_secretsmanager = \"<secret ARN>\" or {base}_ssm = \"<parameter>\"",
                              key=key, source=where)
        else:
            resolved[key] = value
    return resolved
