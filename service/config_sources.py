"""Where the settings come from, and how their errors read: the YAML files (merged) and
the rendering of a validation error, ``key.path: message`` without the value.

Both never quote what the configuration says: a YAML line or a rejected value may hold a
secret (or a whole section of them).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import ConfigError
from .redact import scrub


def read_yaml(files: list[Path]) -> dict[str, Any]:
    """The YAML ``files`` merged (later files win, mappings merge deeply); raise
    :class:`ConfigError` naming the file for a missing, unreadable or malformed one."""
    merged: dict[str, Any] = {}
    for path in files:
        try:
            with path.open(encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except FileNotFoundError:
            raise ConfigError(f"DELEVERAGE_CONFIG: no such file {path}") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML{_where(exc)}") from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of keys")
        _merge(merged, data)
    return merged


def _where(exc: yaml.YAMLError) -> str:
    """Where and what, without the text around it (the line may hold a secret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{at}: {problem}" if problem else at


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def describe(exc: ValidationError) -> str:
    """``key.path: message`` per error. Never the input: pydantic's own ``str()`` quotes it,
    and it may be a secret (or a whole section holding secrets)."""
    problems = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        key = ".".join(str(part) for part in err["loc"]) or "(root)"
        message = err["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        problems.append((key, message))
    return report(problems)


def report(problems: Iterable[tuple[str, str]]) -> str:
    """The message of a :class:`ConfigError`: one ``key.path: message`` line per problem, as
    for the settings' own checks (:mod:`.preflight` reports its checks so too)."""
    lines = [f"{key}: {message}" for key, message in problems]
    return scrub("invalid configuration:\n  " + "\n  ".join(lines))
