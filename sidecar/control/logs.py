"""Logs for a parent: one JSON object per line on stderr (``--log-format json``).

A parent that shows our logs in its own logger (Homebridge) needs the level and the camera
without parsing free text. The camera is recognised by the ``"<camera name>: "`` prefix that
every per-camera log line already has; the names come from the accepted config.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

from ..redact import RedactingFormatter

__all__ = ["JsonFormatter", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self.cameras: tuple[str, ...] = ()

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
            + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": message,
        }
        for name in self.cameras:
            if message.startswith(name + ": "):
                entry["camera"] = name
                entry["message"] = message[len(name) + 2:]
                break
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def configure_logging(level: str | int, log_format: str = "text", stream: TextIO | None = None) -> logging.Formatter:
    """Root logging to stderr, as text or JSON lines; returns the formatter in use."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(RedactingFormatter(formatter))  # no camera password in any line
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return formatter
