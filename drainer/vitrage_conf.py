"""vitrage.conf read the way oslo.config reads it, for the few options the drainer uses; pure.

Matched (oslo.config 10, `cfg.ConfigParser` on `iniparser.BaseParser`, `ConfigOpts._substitute`,
`types.Boolean`) rather than imported: importing oslo.config costs about 0.1 s on every cron tick.
tests/unit/test_vitrage_conf.py reads the same files with oslo.config and compares.

- Lines: `key = value` or `key: value`; a value wrapped in matching quotes loses them; an indented
  line continues the value (joined with a newline); `#` and `;` start a comment only at the start
  of a line; nothing is an inline comment.
- Sections: `DEFAULT` exactly; every other name is case-insensitive. Keys are case-sensitive.
- A key given twice, in one file or in several, keeps its last value (later files win).
- `$name` and `${name}` are replaced by the value of option `name` of the same section (else of
  DEFAULT), `${section.name}` by that section's; `$$` and `\\$` are a literal `$`. A `$` not
  followed by a name stays as it is.
- Booleans: true/1/on/yes and false/0/off/no, in any case; anything else is an error.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from drainer.errors import ConfigError

DEFAULT = "DEFAULT"


@dataclass(frozen=True)
class Option:
    """One option the drainer reads, as Vitrage and oslo.messaging register it."""

    group: str
    name: str
    kind: str = "str"  # "str" or "bool"
    default: Any = None
    secret: bool = False


# What each means to Vitrage: oslo.messaging's transport options (the notification transport
# falls back to DEFAULT's), oslo.db's connection, Vitrage's persistor topic, and the TLS options of
# oslo.messaging's rabbit driver (18.x names and defaults).
OPTIONS = (
    Option(DEFAULT, "transport_url", secret=True),
    Option("oslo_messaging_notifications", "transport_url", secret=True),
    Option("database", "connection", secret=True),
    Option("persistency", "persistor_topic", default="vitrage_persistor"),
    Option("oslo_messaging_rabbit", "ssl", "bool", False),
    Option("oslo_messaging_rabbit", "ssl_version", default=""),
    Option("oslo_messaging_rabbit", "ssl_key_file", default=""),
    Option("oslo_messaging_rabbit", "ssl_cert_file", default=""),
    Option("oslo_messaging_rabbit", "ssl_ca_file", default=""),
)
_BY_NAME = {(o.group, o.name): o for o in OPTIONS}
TRUE_WORDS = ("true", "1", "on", "yes")
FALSE_WORDS = ("false", "0", "off", "no")


def _section_name(name: str) -> str:
    return name if name == DEFAULT else name.lower()


class _Template(string.Template):
    idpattern = r"[_a-z][\._a-z0-9]*"  # oslo.config's: dotted names reach other sections


def parse_ini(text: str, source: str, into: dict[str, dict[str, list[str]]]) -> None:
    """Add the assignments of one file to `into` (section -> key -> values in file order)."""
    section: str | None = None
    key: str | None = None
    value: list[str] = []

    def flush() -> None:
        nonlocal key, value
        if key is not None:
            if section is None:
                raise ConfigError(
                    f"config file {source} is not valid INI: an assignment comes before the first [section]"
                )
            into.setdefault(section, {}).setdefault(key, []).append("\n".join(value))
        key, value = None, []

    for number, raw in enumerate(text.split("\n"), 1):  # readlines(), as oslo.config
        line = raw.rstrip()
        if not line:
            flush()
            continue
        if line[0] in " \t":
            if key is None:
                raise ConfigError(f"config file {source} is not valid INI: line {number}: unexpected continuation line")
            value.append(line.lstrip())
            continue
        flush()
        if line.startswith("["):
            if not line.endswith("]") or len(line) <= 2:
                raise ConfigError(
                    f"config file {source} is not valid INI: line {number}: invalid section header {line!r}"
                )
            section = _section_name(line[1:-1])
            into.setdefault(section, {})
        elif line.startswith(("#", ";")):
            continue
        else:
            key, value = _split(line, source, number)


def _split(line: str, source: str, number: int) -> tuple[str, list[str]]:
    colon, equal = line.find(":"), line.find("=")
    if colon < 0 and equal < 0:
        raise ConfigError(f"config file {source} is not valid INI: line {number}: no ':' or '=' in the assignment")
    cut = equal if colon < 0 or 0 <= equal < colon else colon
    key, value = line[:cut].strip(), line[cut + 1 :].strip()
    if not key:
        raise ConfigError(f"config file {source} is not valid INI: line {number}: empty key")
    if value and value[0] == value[-1] and value.startswith(('"', "'")):
        value = value[1:-1]
    return key, [value]


class Conf:
    """The parsed files; `get` gives an option's value as oslo.config would."""

    def __init__(self, sections: dict[str, dict[str, list[str]]]) -> None:
        self.sections = sections

    def _raw(self, group: str, name: str) -> str | None:
        values = self.sections.get(_section_name(group), {}).get(name)
        return values[-1] if values else None

    def _lookup(self, key: str, group: str, depth: int) -> str:
        # oslo.config's StrSubWrapper: "a.b" is option b of section a; a plain name is looked up
        # in the same section, then in DEFAULT.
        if "." in key:
            where, name = key.split(".", 1)
            candidates = [(where, name), (DEFAULT, key)]
        else:
            candidates = [(group, key), (DEFAULT, key)]
        for where, name in candidates:
            raw = self._raw(where, name)
            if raw is not None:
                return self._substitute(raw, where, depth + 1)
            known = _BY_NAME.get((where, name))
            if known is not None:
                return "" if known.default is None else str(known.default)
        raise KeyError(key)

    def _substitute(self, value: str, group: str, depth: int = 0) -> str:
        if depth > 20:
            raise ConfigError(f"[{group}] substitutions refer to each other in a loop")
        if "\\$" in value:
            value = value.replace("\\$", "$$")
        # In a URL the "reference" is most likely part of a password with a single $: naming it
        # would print the rest of that password.
        in_url = "@" in value or "://" in value

        def lookup(match: re.Match[str]) -> str:
            if match["escaped"] is not None:
                return "$"
            named = match["named"] or match["braced"]
            if named is None:
                return match.group()
            try:
                return self._lookup(named, group, depth)
            except KeyError:
                shown = "a $name (not shown: in a URL it may be part of a password)" if in_url else f"${named}"
                raise ConfigError(
                    f"[{group}] refers to {shown}, which is set nowhere in the config files: oslo.config "
                    "replaces $name and ${name} with another option's value; write a literal $ as $$"
                ) from None

        return _Template.pattern.sub(lookup, value)

    def section(self, group: str) -> dict[str, str]:
        """Every key of a section (not an option the drainer registers) -> its last value, substituted."""
        keys = self.sections.get(_section_name(group), {})
        return {key: self._substitute(values[-1], group) for key, values in keys.items()}

    def get(self, group: str, name: str) -> Any:
        """The value of one of OPTIONS: substituted, typed, or its default when not set."""
        option = _BY_NAME[(group, name)]
        raw = self._raw(group, name)
        if raw is None:
            return option.default
        try:
            value = self._substitute(raw, group)
        except ConfigError as exc:
            raise ConfigError(f"config option [{group}] {name}: {exc}") from None
        if option.kind == "bool":
            return parse_bool(value, f"[{group}] {name}")
        return value


def parse_bool(value: str, what: str) -> bool:
    """oslo.config's Boolean type."""
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ConfigError(f"{what} must be true or false, got {value!r}")


def read(paths: Iterable[str]) -> Conf:
    """Parse the files in order (later files win); ConfigError names an unreadable or invalid one."""
    sections: dict[str, dict[str, list[str]]] = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path!r}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path!r} is not UTF-8: {exc}") from exc
        parse_ini(text, repr(path), sections)
    return Conf(sections)
