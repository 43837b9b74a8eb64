"""What was built: the package version, for ``/openapi.json`` and ``deleverage_build_info``."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Final


def _version() -> str:
    try:
        return version("deleverage")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "0+unknown"


VERSION: Final = _version()
PYTHON_VERSION: Final = platform.python_version()
