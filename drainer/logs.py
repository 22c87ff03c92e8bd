"""Log setup (JSON by default, text for a terminal) and the run id carried on every record."""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

# LogRecord attributes that are not caller-supplied fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "run_id"}


class _RunId(logging.Filter):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        return True


def _text_value(value: object) -> str:
    if isinstance(value, str):
        # Quoted (as JSON) only when the value would not read as one word: logfmt's convention.
        return value if value and not any(c in value for c in ' ="\n\t') else json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)  # lists and dicts as JSON, never a repr


class _TextFormatter(logging.Formatter):
    """`date time level logger [run id] message  key=value ...`: one readable line per record."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{k}={_text_value(v)}" for k, v in vars(record).items() if k not in _STANDARD and v is not None
        )
        stamp = self.formatTime(record, "%Y-%m-%d %H:%M:%S%z")
        line = f"{stamp} {record.levelname:<7} {record.name} [{getattr(record, 'run_id', '-')}] {record.getMessage()}"
        line = f"{line}  {fields}" if fields else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:  # the scrubbing filter keeps the traceback here, as text
            line += "\n" + record.exc_text
        return line


class _Scrub(logging.Filter):
    """Masks URL passwords and every known secret in a record's text fields before it is formatted
    (never in the finished line: a secret like "1000" must not rewrite a number in the JSON)."""

    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def scrub(self, text: str) -> str:
        from drainer.config import mask_url

        for url, masked in _URLS.items():  # whole configured URLs first: any password, any length
            text = text.replace(url, masked)
        text = mask_url(text)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a caller's bad %-arguments must not raise at its call site
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.scrub(message), None
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        if record.exc_info:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


_SECRETS: set[str] = set()
_URLS: dict[str, str] = {}


def add_secrets(secrets: set[str], urls: tuple[str, ...] = ()) -> None:
    """Scrub these strings (the configured passwords) and URLs from every record from now on."""
    from drainer.config import mask_url

    _SECRETS.update(s for s in secrets if s)
    _URLS.update({url: mask_url(url) for url in urls if url and mask_url(url) != url})


def scrub(text: str) -> str:
    """The same scrubbing for text the CLI prints itself (the `status` report)."""
    return _Scrub(_SECRETS).scrub(text)


def setup(
    fmt: str, run_id: str, stream: TextIO | None = None, level: int = logging.INFO, verbose: bool = False
) -> None:
    """Install one handler on the root logger; only the CLI calls this.

    The broker client's own records (pika: a line per failed socket, channel closes with object
    reprs) are dropped unless `verbose`: the drainer's retry and error records already say what
    happened, in its words. `verbose` also shows the drainer's DEBUG records.
    """
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
    handler.addFilter(_Scrub(_SECRETS))
    handler.addFilter(_RunId(run_id))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("drainer").setLevel(logging.DEBUG if verbose else logging.NOTSET)
    logging.captureWarnings(True)  # library warnings become records too: JSON, scrubbed
    # pika at DEBUG logs every frame; INFO and up is "in full" for a person debugging a connect.
    logging.getLogger("pika").setLevel(logging.INFO if verbose else logging.CRITICAL + 1)
