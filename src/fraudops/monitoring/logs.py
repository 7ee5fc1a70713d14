"""Structured logs: one JSON object per line, with the trace they belong to, scrubbed of secrets.

Every line carries ``timestamp`` (ISO 8601, UTC), ``level``, ``event`` and, inside a span,
the OpenTelemetry ``trace_id`` and ``span_id``, so a log line leads to its trace. Before
anything is written, values that look like card numbers (a Luhn-valid run of 13-19 digits)
are masked to their first 6 and last 4 digits, and values under keys named like secrets
(``password``, ``token``, ``api_key``, ``authorization``, ``secret``...) are replaced by
``[redacted]``. Records from the standard library's ``logging`` (uvicorn, libraries) go
through the same processors to the same stream.

Nothing is configured at import: the service calls :func:`configure_logging` once at start.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO, cast

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

REDACTED = "[redacted]"
"""What a secret's value is replaced by."""

# A run of at least 13 digits, single spaces or dashes allowed between digits: the only
# text that can hold a card number, and rare enough that most strings fail this one scan.
_DIGIT_RUN = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")
_DIGIT_GROUP = re.compile(r"[0-9]+")
_PAN_MIN_DIGITS, _PAN_MAX_DIGITS = 13, 19
_KEEP_FIRST, _KEEP_LAST = 6, 4
_SECRET_WORDS = frozenset(
    {"apikey", "authorization", "cookie", "passwd", "password", "secret", "token"}
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn check that card numbers carry."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def mask_pans(text: str) -> str:
    """``text`` with every card-number-like value masked to its first 6 and last 4 digits.

    A candidate is a whole group of digits, or several groups joined by single spaces or
    dashes ("4111 1111 1111 1111"), of 13-19 digits in all, passing the Luhn check. Digits
    are never split out of a longer group, so a 20-digit id, or a 16-digit id that fails
    Luhn, is left as it is.
    """
    if _DIGIT_RUN.search(text) is None:
        return text
    chars = list(text)
    for run in _DIGIT_RUN.finditer(text):
        groups = [
            (run.start() + g.start(), run.start() + g.end())
            for g in _DIGIT_GROUP.finditer(run.group())
        ]
        for first in range(len(groups)):
            digits = ""
            for last in range(first, len(groups)):
                start, end = groups[last]
                digits += text[start:end]
                if len(digits) > _PAN_MAX_DIGITS:
                    break
                if len(digits) >= _PAN_MIN_DIGITS and luhn_valid(digits):
                    _mask_span(chars, groups[first][0], end, len(digits))
    return "".join(chars)


def _mask_span(chars: list[str], start: int, end: int, n_digits: int) -> None:
    """Replace the digits of ``chars[start:end]`` by '*', but the first 6 and the last 4."""
    seen = 0
    for index in range(start, end):
        if chars[index] in " -":
            continue
        if _KEEP_FIRST <= seen < n_digits - _KEEP_LAST:
            chars[index] = "*"
        seen += 1


@functools.lru_cache(maxsize=1024)
def is_secret_key(key: str) -> bool:
    """Whether a key is named like a secret (``api_key``, ``X-Auth-Token``, ``dbPassword``...).

    Whole words count, so ``access_token`` is a secret and ``prompt_tokens`` is not.
    """
    words = _NON_WORD.split(_CAMEL_BOUNDARY.sub("_", key).lower())
    if any(a == "api" and b == "key" for a, b in itertools.pairwise(words)):
        return True
    return any(word in _SECRET_WORDS for word in words)


def _scrub(key: str, value: Any) -> Any:
    """``value`` with secrets redacted and card numbers masked, recursively."""
    if is_secret_key(key):
        return REDACTED
    kind = type(value)
    # Exact-type checks first: they are the common cases and far cheaper than isinstance
    # against ABCs, and this runs for every field of every line.
    if kind is str:
        return mask_pans(value) if len(value) >= _PAN_MIN_DIGITS else value
    if kind is float or kind is bool or value is None:
        return value
    if kind is int:
        # A card number logged as an int is still a card number.
        if value >= 10 ** (_PAN_MIN_DIGITS - 1):
            text = str(value)
            masked = mask_pans(text)
            return value if masked == text else masked
        return value
    if isinstance(value, str):  # str subclasses, such as StrEnum members
        masked = mask_pans(value)
        return value if masked == value else masked
    if isinstance(value, Mapping):
        return {k: _scrub(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub("", item) for item in value]
    return value


# Keys the processors add themselves, holding nothing a caller passed in.
_OWN_KEYS = frozenset({"timestamp", "level", "logger", "trace_id", "span_id"})


def scrub_sensitive(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: redact secret-named keys and mask card numbers anywhere in the event."""
    for key, value in event_dict.items():
        # Leading "_": structlog's own bookkeeping (the stdlib record), never rendered.
        if key in _OWN_KEYS or key.startswith("_"):
            continue
        event_dict[key] = _scrub(key, value)
    return event_dict


def add_trace_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: add the active OpenTelemetry ``trace_id`` and ``span_id``, if any."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = trace.format_trace_id(context.trace_id)
        event_dict["span_id"] = trace.format_span_id(context.span_id)
    return event_dict


def _orjson_dumps(obj: Any, default: Any = None, **_kw: Any) -> str:
    """Serialise an event dict with orjson, as ``JSONRenderer`` expects of a serializer."""
    return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS).decode()


class _NamedWriteLogger(structlog.WriteLogger):
    """A structlog WriteLogger with a ``name``, which ``add_logger_name`` puts in the line."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriteLoggerFactory:
    """Makes a :class:`_NamedWriteLogger` for the name ``get_logger`` was given."""

    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        return _NamedWriteLogger(self._file, str(args[0]) if args else "")


class _StdlibHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler :func:`configure_logging` installs, so a second call replaces it."""


def _level_number(level: str) -> int:
    """The ``logging`` number of a level name, or ValueError."""
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


def configure_logging(
    *, level: str = "INFO", json: bool = True, stream: TextIO | None = None
) -> None:
    """Send structlog and stdlib ``logging`` records at ``level`` or above to ``stream``.

    ``json`` writes one JSON object per line; otherwise a console format for people. Call it
    once at start-up, before the first log call: each logger caches its configuration on
    first use (this keeps a call cheap), so a later call does not reach loggers already used.
    """
    min_level = _level_number(level)
    out = stream if stream is not None else sys.stdout
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_orjson_dumps)
        if json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        # Last before rendering, so formatted tracebacks are scrubbed too.
        scrub_sensitive,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        # Below ``min_level`` a log call is a bare ``return None``: nothing is built or rendered.
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        context_class=dict,
        logger_factory=_NamedWriteLoggerFactory(out),
        cache_logger_on_first_use=True,
    )

    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(handler)
    handler = _StdlibHandler(out)
    handler.setLevel(min_level)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root.addHandler(handler)
    root.setLevel(min_level)
    # uvicorn's own logging config (applied if anything ran uvicorn with it in this process)
    # gives its loggers private handlers that bypass masking and JSON: route them here.
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
        server_logger.disabled = False
        server_logger.setLevel(logging.NOTSET)


_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def get_logger(name: str) -> FilteringBoundLogger:
    """A logger whose lines carry ``logger=name``."""
    return cast(FilteringBoundLogger, structlog.get_logger(name))
