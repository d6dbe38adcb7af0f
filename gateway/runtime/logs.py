"""Logging: structlog for our code, the standard library's records routed through it.

Every record, ours or a library's (aiohttp access log, asyncio, alembic), goes
through the same chain: context from ``structlog.contextvars`` (branch id,
terminal, request id, job id), level, UTC timestamp, formatted exception,
**redaction** (secrets removed, identity numbers masked; see
:mod:`security.redaction`), then one renderer: JSON lines for a service,
coloured key=value on a terminal.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Literal, TextIO

import structlog

from security.redaction import redact_event

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor

__all__ = ["configure_logging"]

LogFormat = Literal["auto", "json", "console"]


def configure_logging(
    level: str = "info", log_format: LogFormat = "auto", stream: TextIO | None = None
) -> None:
    """Install the logging chain for the whole process.

    Args:
        level: the lowest level written (``debug``, ``info``, ``warning``, ``error``).
        log_format: ``json`` lines, ``console`` text, or ``auto``: console when
            ``stream`` is a terminal, JSON otherwise (systemd, files, pipes).
        stream: where records go; standard error by default.
    """
    out = sys.stderr if stream is None else stream
    as_json = log_format == "json" or (log_format == "auto" and not out.isatty())

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    # Exceptions are turned into text *before* redaction so that a traceback
    # quoting a PIN or an identity number is redacted too. Our own events are
    # redacted before they become a logging record (so no other handler ever
    # sees them raw); library records are redacted in the formatter.
    scrub: list[Processor] = [
        structlog.processors.format_exc_info,
        structlog.processors.StackInfoRenderer(),
        redact_event,
    ]
    final: list[Processor] = [
        _scrub_foreign(scrub),  # our own events were scrubbed on the way in
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        renderer,
    ]

    # Our own events go straight to the stream (no logging.LogRecord, no second
    # formatting pass: the request log line costs a fraction of the stdlib route);
    # library records still come through the standard library's handler below.
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, *scrub, renderer],
        logger_factory=_NamedWriteLoggerFactory(out),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log duplicates our own request log line, and Alembic
    # announces its dialect on every revision check; we log what matters ourselves.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _scrub_foreign(scrub: list[Processor]) -> Processor:
    """A formatter processor: run ``scrub`` on records of other libraries only."""

    def processor(logger: Any, method: str, event_dict: EventDict) -> EventDict:  # noqa: ANN401
        if event_dict.get("_from_structlog"):
            return event_dict
        for step in scrub:
            event_dict = step(logger, method, event_dict)  # type: ignore[assignment]
        return event_dict

    return processor


class _NamedWriteLogger(structlog.WriteLogger):
    """A write logger that knows its name (``structlog.get_logger(__name__)``)."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name or ""


class _NamedWriteLoggerFactory:
    """Makes :class:`_NamedWriteLogger` objects on one stream."""

    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:  # noqa: ANN401 - structlog passes the name
        return _NamedWriteLogger(self._file, args[0] if args and isinstance(args[0], str) else None)
