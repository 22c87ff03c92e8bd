"""Log setup (JSON by default, text for a terminal) and the run id carried on every record."""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

# LogRecord attributes that are not caller-supplied fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "run_id"}


class _RunId(logging.Filter):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


class _TextFormatter(logging.Formatter):
    """`time level message key=value ...`, readable at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and v is not None)
        line = f"{self.formatTime(record, '%H:%M:%S')} {record.levelname:<7} {record.getMessage()}"
        line = f"{line}  {fields}" if fields else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(fmt: str, run_id: str, stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Install one handler on the root logger; only the CLI calls this."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        formatter = JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(run_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            json_ensure_ascii=False,
        )
    else:
        formatter = _TextFormatter()
    handler.setFormatter(formatter)
    handler.addFilter(_RunId(run_id))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)


def record(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> None:
    logger.log(level, message, extra=fields)
