"""deleverage: tells when leverage is being unwound on crypto derivatives venues."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import ccxt_lazy

ccxt_lazy.install()  # before any service module imports ccxt: its exchanges on first use

try:
    __version__ = version("deleverage")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
