"""Logs: JSON lines that carry the trace, with card numbers masked and secrets redacted."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from fraudops.monitoring.logs import (
    REDACTED,
    configure_logging,
    get_logger,
    is_secret_key,
    luhn_valid,
    mask_pans,
)
from fraudops.monitoring.tracing import current_span_id, current_trace_id, tracer_provider
from fraudops.types import Action


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The JSON objects written to ``stream``, one per line."""
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def with_check_digit(body: str) -> str:
    """``body`` followed by the digit that makes it pass the Luhn check."""
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


def test_a_line_has_timestamp_level_event_and_logger() -> None:
    """Each call writes one JSON object with an ISO UTC timestamp, level, event and logger."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    get_logger("fraudops.test").info("decided", action=Action.APPROVE)
    [line] = lines(stream)
    timestamp = line.pop("timestamp")
    expected = {"event": "decided", "level": "info", "logger": "fraudops.test", "action": "approve"}
    assert expected == line
    assert datetime.fromisoformat(timestamp).utcoffset() is not None


def test_lines_inside_a_span_carry_its_trace_and_span_ids() -> None:
    """A line logged in a span has that span's trace_id and span_id; one outside has neither."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    log = get_logger("fraudops.test")
    with tracer_provider("fraudops-test").get_tracer("test").start_as_current_span("decide"):
        log.info("inside")
        expected = (current_trace_id(), current_span_id())
    log.info("outside")
    inside, outside = lines(stream)
    assert expected == (inside["trace_id"], inside["span_id"])
    assert {"trace_id", "span_id"}.isdisjoint(outside)


def test_card_numbers_are_masked_anywhere_in_the_event() -> None:
    """Luhn-valid card numbers in the message, fields, nested values and ints are masked."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    get_logger("fraudops.test").info(
        "card 4111 1111 1111 1111 declined",
        pan="4111111111111111",
        pan_int=5500000000000004,
        request={"body": {"cards": ["378282246310005", "6011-1111-1111-1117"]}},
    )
    [line] = lines(stream)
    assert "card 4111 11** **** 1111 declined" == line["event"]
    assert "411111******1111" == line["pan"]
    assert "550000******0004" == line["pan_int"]
    assert {"body": {"cards": ["378282*****0005", "6011-11**-****-1117"]}} == line["request"]


def test_ids_that_are_not_card_numbers_are_left_alone() -> None:
    """Digit runs that fail Luhn, are too long or too short keep every digit."""
    not_luhn = "4111111111111112"
    too_long = with_check_digit("4111111111111111111")  # 20 digits
    too_short = with_check_digit("41111111111")  # 12 digits
    text = f"tx {not_luhn} batch {too_long} ref {too_short} amount 1234.56"
    assert not luhn_valid(not_luhn)
    assert text == mask_pans(text)


def test_a_card_number_next_to_other_numbers_is_still_found() -> None:
    """A card number after a date or an id, joined by a space, is masked on its own."""
    assert "2024-01-01 411111******1111" == mask_pans("2024-01-01 4111111111111111")
    assert "123456789012 411111******1111" == mask_pans("123456789012 4111111111111111")


@given(
    body=st.text(alphabet="0123456789", min_size=12, max_size=18),
    separator=st.sampled_from(["", " ", "-"]),
)
def test_any_luhn_valid_number_keeps_only_its_first_six_and_last_four(
    body: str, separator: str
) -> None:
    """Every Luhn-valid 13-19 digit number, grouped by 4 or not, shows 6 + 4 digits."""
    digits = with_check_digit(body)
    grouped = separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    masked = mask_pans(f"pan={grouped}.")
    shown = masked.removeprefix("pan=").removesuffix(".").replace(separator or "_", "")
    assert digits[:6] + "*" * (len(digits) - 10) + digits[-4:] == shown


@given(st.text(alphabet="0123456789", min_size=13, max_size=19))
def test_digit_runs_failing_luhn_are_unchanged(digits: str) -> None:
    """A 13-19 digit run that fails the Luhn check is not a card number."""
    if luhn_valid(digits):
        digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert digits == mask_pans(digits)


def test_values_under_secret_keys_are_redacted() -> None:
    """api_key, authorization, password, token and secret fields, nested too, are redacted."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    get_logger("fraudops.test").info(
        "call",
        api_key="k1",
        password="p",
        client_secret="s",
        headers={"Authorization": "Bearer t", "X-Api-Key": "k2", "Accept": "json"},
        accessToken="t2",
        prompt_tokens=812,
    )
    [line] = lines(stream)
    assert REDACTED == line["api_key"] == line["password"] == line["client_secret"]
    assert {"Authorization": REDACTED, "X-Api-Key": REDACTED, "Accept": "json"} == line["headers"]
    assert REDACTED == line["accessToken"]
    assert 812 == line["prompt_tokens"]


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("api_key", True),
        ("apiKey", True),
        ("x-api-key", True),
        ("authorization", True),
        ("db_password", True),
        ("refresh_token", True),
        ("SECRET", True),
        ("session_cookie", True),
        ("tokens_used", False),
        ("api_version", False),
        ("key", False),
        ("transaction_id", False),
    ],
)
def test_secret_keys_are_recognised_by_whole_words(key: str, secret: bool) -> None:
    """A key is secret when one of its words is a secret word, not when it merely contains one."""
    assert secret == is_secret_key(key)


def test_lines_below_the_level_are_dropped() -> None:
    """At WARNING, info lines are not written and warnings are, from structlog and logging."""
    stream = io.StringIO()
    configure_logging(level="WARNING", stream=stream)
    log = get_logger("fraudops.test")
    log.info("quiet")
    log.warning("loud")
    logging.getLogger("uvicorn.error").info("quiet too")
    logging.getLogger("uvicorn.error").warning("loud too")
    assert [("loud", "warning"), ("loud too", "warning")] == [
        (line["event"], line["level"]) for line in lines(stream)
    ]


def test_unknown_level_is_refused() -> None:
    """A misspelt level fails at configuration instead of logging everything or nothing."""
    with pytest.raises(ValueError, match="VERBOSE"):
        configure_logging(level="VERBOSE", stream=io.StringIO())


def test_stdlib_records_go_through_the_same_processors() -> None:
    """A library's logging record is a JSON line with the logger name, trace and masking."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    with tracer_provider("fraudops-test").get_tracer("test").start_as_current_span("request"):
        logging.getLogger("uvicorn.access").info("GET /cards/%s 200", "4111111111111111")
        trace_id = current_trace_id()
    [line] = lines(stream)
    assert ("GET /cards/411111******1111 200", "uvicorn.access", "info", trace_id) == (
        line["event"],
        line["logger"],
        line["level"],
        line["trace_id"],
    )


def test_exceptions_are_rendered_and_scrubbed() -> None:
    """log.exception writes the traceback as text, with card numbers in it masked."""
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        raise ValueError("bad card 4111111111111111")
    except ValueError:
        get_logger("fraudops.test").exception("failed")
    [line] = lines(stream)
    assert "error" == line["level"]
    assert "ValueError: bad card 411111******1111" in line["exception"]


def test_console_format_is_for_people_and_still_masked() -> None:
    """json=False writes a readable line, not JSON, with the same masking."""
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    get_logger("fraudops.test").info("declined", pan="4111111111111111")
    text = stream.getvalue()
    assert not text.startswith("{")
    assert "declined" in text
    assert "411111******1111" in text


def test_reconfiguring_replaces_the_stdlib_handler() -> None:
    """Calling configure_logging twice leaves one handler, writing to the newer stream."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    logging.getLogger("fraudops.lib").warning("once")
    assert ("", ["once"]) == (first.getvalue(), [line["event"] for line in lines(second)])


def test_importing_configures_nothing() -> None:
    """Importing the monitoring package leaves structlog and logging unconfigured."""
    code = (
        "import logging, structlog, fraudops.monitoring;"
        "print(structlog.is_configured(), len(logging.getLogger().handlers))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "False 0" == result.stdout.strip()
