"""ccxt's exchange classes imported when first used, not all at ``import ccxt``.

``ccxt/__init__.py`` imports every one of its ~105 exchanges (``from ccxt.binance import
binance``...), and so does ``ccxt/async_support/__init__.py`` for their async twins; since a
package's ``__init__`` runs before any of its modules, ``import ccxt.async_support`` (or even
``from ccxt.base.errors import BadResponse``) loads both sets: 331 modules, about 70 MB of
resident memory and half a second, for the eight exchanges the venues use. The measured
figures are in ``docs/performance.md`` (Memory).

:func:`install` puts a finder first on ``sys.meta_path`` that loads those two packages from
their own source with the ``from <package>.<name> import <name>`` statements left out; every
other statement (the base classes, the errors, the ``exchanges`` list, ``__all__``) runs as
written. An exchange left out is imported on first access to the package's attribute
(``getattr(ccxt_async, "bybit")``, ``ccxt.bitget``...; module ``__getattr__``, PEP 562), and
the attribute is then the class, as ccxt's own ``__init__`` makes it, even when the
exchange's module was imported first by another path (``ccxt.async_support.binanceusdm``
imports ``ccxt.async_support.binance``: the import system then sets the package's attribute
to the module, which is turned into the class here). ``from ccxt import *`` imports them all.

Nothing changes when ccxt was imported before :func:`install` (the packages are then in
``sys.modules`` and the finder is never asked) or when the packages' source cannot be read
(the finder steps aside and the regular import runs). ``service/__init__.py`` installs it,
so it is in place before any service module can import ccxt.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

PACKAGES = frozenset({"ccxt", "ccxt.async_support"})
"""The packages whose ``__init__`` imports every exchange."""
_DEFERRED = "__deleverage_deferred__"


def deferred_names(tree: ast.Module, package: str) -> set[str]:
    """The names bound by ``from <package>.<name> import <name>`` at the top of ``tree``:
    ccxt's one-exchange-per-module imports."""
    return {name for stmt in tree.body if (name := _exchange_import(stmt, package))}


def _exchange_import(stmt: ast.stmt, package: str) -> str | None:
    if not isinstance(stmt, ast.ImportFrom) or stmt.level or len(stmt.names) != 1:
        return None
    alias = stmt.names[0]
    if alias.asname is None and stmt.module == f"{package}.{alias.name}":
        return alias.name
    return None


class LazyExchanges(types.ModuleType):
    """A ccxt package whose exchange classes are imported on first access."""

    def __getattr__(self, name: str) -> Any:
        # only called when the attribute is not set: an exchange not imported yet
        if name not in self.__dict__.get(_DEFERRED, ()):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        module = importlib.import_module(f"{self.__name__}.{name}")
        value = getattr(module, name)
        super().__setattr__(name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        # the import system binds a loaded submodule on its package: ccxt binds the class
        if (
            isinstance(value, types.ModuleType)
            and value.__name__ == f"{self.__name__}.{name}"
            and name in self.__dict__.get(_DEFERRED, ())
            and hasattr(value, name)
        ):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__dict__.get(_DEFERRED, ())))


class _Loader(importlib.abc.Loader):
    """Runs a ccxt package's ``__init__`` without its exchange imports."""

    def __init__(self, real: importlib.machinery.SourceFileLoader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module, its class changed in exec_module

    def exec_module(self, module: types.ModuleType) -> None:
        path = self.real.get_filename(module.__name__)
        tree = ast.parse(self.real.get_data(path), path)
        deferred = deferred_names(tree, module.__name__)
        tree.body = [s for s in tree.body if _exchange_import(s, module.__name__) is None]
        module.__class__ = LazyExchanges
        setattr(module, _DEFERRED, frozenset(deferred))
        exec(compile(tree, path, "exec"), module.__dict__)  # ccxt's own source, less its exchanges

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)  # get_source, get_filename... as the real loader


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PACKAGES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None  # not a source package: the regular import, eager
        spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Defer ccxt's exchange imports in this process (idempotent; no effect on a ccxt
    already imported)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
