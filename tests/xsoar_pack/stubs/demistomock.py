"""Stand-in for XSOAR's `demistomock` (not on PyPI): the calls the WIA Security integration makes.

State lives in module globals that tests set through `reset()`; what the integration returns is
recorded in `results`, `incidents_out`, `last_run` and `logs`.
"""
from __future__ import annotations

from typing import Any

_params: dict[str, Any] = {}
_args: dict[str, Any] = {}
_command = ""
last_run: dict[str, Any] = {}
results_log: list[Any] = []
incidents_out: list[list[dict[str, Any]]] = []
logs: list[tuple[str, str]] = []


def reset(params: dict[str, Any] | None = None, args: dict[str, Any] | None = None, command: str = "",
          last: dict[str, Any] | None = None) -> None:
    global _params, _args, _command, last_run
    _params, _args, _command, last_run = dict(params or {}), dict(args or {}), command, dict(last or {})
    results_log.clear()
    incidents_out.clear()
    logs.clear()


def params() -> dict[str, Any]:
    return _params


def args() -> dict[str, Any]:
    return _args


def command() -> str:
    return _command


def getLastRun() -> dict[str, Any]:  # noqa: N802 - XSOAR's name
    return dict(last_run)


def setLastRun(value: dict[str, Any]) -> None:  # noqa: N802
    global last_run
    last_run = dict(value)


def incidents(value: list[dict[str, Any]]) -> None:
    incidents_out.append(list(value))


def results(value: Any) -> None:
    results_log.append(value)


def debug(msg: str) -> None:
    logs.append(("debug", msg))


def info(msg: str) -> None:
    logs.append(("info", msg))


def error(msg: str) -> None:
    logs.append(("error", msg))

