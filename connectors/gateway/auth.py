"""Bearer-token checks in constant time (hmac.compare_digest against every configured token).

Accepted spellings: `Authorization: Bearer <t>` (the API and the stream), `Authorization: Splunk <t>`
(HEC forwarders), and HTTP Basic with the token as password (HEC and TAXII clients that only do
Basic). Tokens never appear in logs, errors or reprs.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import time
from typing import Sequence

from wia_security.errors import ConfigError

from .settings import MIN_TOKEN_CHARS, read_token_file

log = logging.getLogger("wia_security.gateway")

#: Seconds between two looks (one stat) at a token file: a changed file is re-read within this.
TOKEN_FILE_CHECK_SECONDS = 1.0
#: A version whose mtime is younger than this when read may be followed by another edit within the same tick of
#: the file system's clock (same size and times): it is read again at each look until its mtime is older.
RECENT_MTIME_SECONDS = 2.0


class TokenSet:
    def __init__(self, tokens: Sequence[str], *, allow_anonymous: bool = False) -> None:
        self._tokens = [t.encode("utf-8") for t in tokens]
        self.allow_anonymous = allow_anonymous and not tokens

    def check(self, presented: str | None) -> bool:
        if self.allow_anonymous:
            return True
        if not presented:
            return False
        candidate = presented.encode("utf-8")
        ok = False
        for token in self._tokens:         # no early exit: the time does not tell which token matched
            ok |= hmac.compare_digest(candidate, token)
        return ok

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:
        return f"<TokenSet {len(self._tokens)} token(s)>"


def credential(authorization: str | None, schemes: Sequence[str] = ("bearer",)) -> tuple[str | None, str | None]:
    """(scheme, token) from an Authorization header value; Basic yields its password."""
    if not authorization:
        return None, None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "basic" and "basic" in schemes:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return "basic", None
        return "basic", decoded.partition(":")[2]
    if scheme in schemes:
        return scheme, value or None
    return scheme, None


class TokenFile:
    """A token file the gateway re-reads when it changes (its inode, size, mtime or ctime differ) or when asked
    (SIGHUP). A version that cannot be read, holds no token, or holds a token shorter than MIN_TOKEN_CHARS is
    not taken: the last good tokens stay, with one warning per such version (a half-written file must neither
    lock every client out nor open the gateway). Warnings name the file and a line number, never a token."""

    def __init__(self, path: str, *, what: str = "token file") -> None:
        self.path = path
        self.what = what
        self._seen: tuple[int, ...] | None = None   # the version last looked at (taken or refused)
        self._warned: object = None
        self._recent = False                        # the version last read may hide a later edit (same times)
        self.tokens = self._read_at_start()
        self.taken = 0                              # new versions taken since the start
        self.refused = 0                            # versions not taken (each counted once)

    def _signature(self) -> tuple[int, ...]:
        st = os.stat(self.path)
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _recently_modified(self, signature: tuple[int, ...]) -> bool:
        return time.time_ns() - signature[3] < RECENT_MTIME_SECONDS * 1e9

    def _read_at_start(self) -> list[str]:
        try:
            self._seen = self._signature()
            self._recent = self._recently_modified(self._seen)
            tokens = read_token_file(self.path)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the {self.what}: {_reason(exc)}", key="token_file",
                              source=self.path) from None
        problem = _problem(tokens)
        if problem and tokens:                      # no token at all is the settings' own error
            raise ConfigError(f"{self.what}: {problem}", key="token_file", source=self.path)
        return tokens

    def poll(self, *, force: bool = False) -> list[str] | None:
        """The file's tokens when a new version was taken, else None (unchanged, or refused with a warning).
        Blocking (stat, and a read when it changed): call it off the event loop."""
        try:
            signature = self._signature()
            unchanged = signature == self._seen
            if unchanged and not force and not self._recent:
                return None
            self._seen = signature
            self._recent = self._recently_modified(signature)
            tokens = read_token_file(self.path)
        except (OSError, UnicodeDecodeError) as exc:
            self._seen = None
            self._warn(("unreadable", _reason(exc)), f"cannot read the {self.what} {self.path} ({_reason(exc)})")
            return None
        if unchanged and not force and tokens == self.tokens:
            return None                             # read again since it was recent: the same version
        problem = _problem(tokens) or (None if tokens else "it holds no token")
        if problem:
            self._warn(("bad", signature), f"the {self.what} {self.path} is not taken: {problem}")
            return None
        self._warned = None
        self.tokens = tokens
        self.taken += 1
        return tokens

    def _warn(self, key: object, message: str) -> None:
        if key != self._warned:                     # once per bad version, not every second
            self._warned = key
            self.refused += 1
            log.warning("%s; the %d token(s) of its last good version stay in force", message, len(self.tokens))

    def __repr__(self) -> str:
        return f"<TokenFile {self.path!r} {len(self.tokens)} token(s)>"


def _problem(tokens: list[str]) -> str | None:
    for number, token in enumerate(tokens, 1):
        if len(token) < MIN_TOKEN_CHARS:
            return f"token {number} is shorter than {MIN_TOKEN_CHARS} characters"
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return "not UTF-8 text"
