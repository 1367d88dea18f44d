"""Known secrets are masked in delivery errors, in every form an echo takes; unknown text is untouched."""
from __future__ import annotations

import pytest

from wia_security.errors import DeliveryError
from wia_security.redact import MASK, MIN_CHARS, redact, redact_value, remember

KEY = "k3y/with+odd=chars\"0123"


def test_every_form_of_a_remembered_secret_is_masked():
    remember(KEY)
    echoes = [KEY, "k3y%2Fwith%2Bodd%3Dchars%220123", "k3y%2Fwith%2Bodd%3Dchars%220123", 'k3y/with+odd=chars\\"0123']
    for echo in echoes:
        assert redact(f"bad key <{echo}> here") == f"bad key <{MASK}> here"


def test_short_values_and_non_strings_are_not_remembered():
    remember("a" * (MIN_CHARS - 1))
    remember(None)
    remember(12345678)
    assert redact("aaaaaaa 12345678") == "aaaaaaa 12345678"


def test_longest_form_first_leaves_no_partial_secret():
    remember("abcdefgh")
    remember("abcdefgh-and-more")
    assert redact("x abcdefgh-and-more y abcdefgh") == f"x {MASK} y {MASK}"


def test_delivery_error_masks_reason_and_details_without_changing_the_callers_document():
    remember(KEY)
    details = {"error": {"echo": [KEY, 1]}, KEY: True}
    error = DeliveryError(f"HTTP 401: {KEY}", sink="s", details=details)
    assert error.reason == f"HTTP 401: {MASK}" and KEY not in str(error)
    assert error.details == {"error": {"echo": [MASK, 1]}, MASK: True}
    assert details["error"]["echo"][0] == KEY


def test_secret_objects_are_remembered_when_made():
    from wia_security.connectors.config import Secret
    Secret("from-the-environment-42", origin="env HEC_TOKEN")
    assert redact("token from-the-environment-42") == f"token {MASK}"


@pytest.mark.parametrize("value", [None, 3, [1, "x"], {"a": "b"}])
def test_nothing_known_leaves_values_as_they_are(value):
    assert redact_value(value) is value


def _stream_logger(name: str):
    import io
    import logging
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger, stream, handler


def test_log_records_of_any_logger_mask_known_secrets_in_message_args_and_traceback():
    # a child logger with its own handler, as a client library's (pymisp logs its request headers at DEBUG)
    logger, stream, handler = _stream_logger("some_client_library.transport")
    remember(KEY)
    try:
        logger.debug("headers %s", {"Authorization": KEY})
        logger.error("echo: %r", f"bad key {KEY}")
        try:
            raise ValueError(f"refused {KEY}")
        except ValueError:
            logger.exception("request failed")
        logger.warning("100%% of %d done", 3)             # records without a secret are left as they are
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert KEY not in text and 'k3y/with+odd=chars\\"0123' not in text
    assert text.count(MASK) == 3 and f"ValueError: refused {MASK}" in text
    assert "WARNING 100% of 3 done" in text


def test_basic_auth_is_masked_as_the_authorization_header_carries_it():
    import base64
    from wia_security.redact import remember_basic_auth
    remember_basic_auth("elastic", "pw-123")               # too short to mask alone, not as a pair
    remember_basic_auth("reader", "")                      # no password: nothing to hide
    header = base64.b64encode(b"elastic:pw-123").decode()
    assert redact(f"echo: Authorization: Basic {header}; user elastic:pw-123") == \
        f"echo: Authorization: Basic {MASK}; user {MASK}"
    assert redact("reader: ok") == "reader: ok" and redact("cmVhZGVyOg==") == "cmVhZGVyOg=="
