"""ccxt through :mod:`service.ccxt_lazy`: no exchange loaded until used, and every name the
packages export the same as ccxt's own eager ``__init__`` gives.

Each check runs in a fresh interpreter: in this one ccxt may already be imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DESCRIBE = """
import json, sys, types
import ccxt, ccxt.async_support
def kind(v):
    if isinstance(v, type):
        return f"class {v.__module__}.{v.__qualname__}"
    if isinstance(v, types.ModuleType):
        return f"module {v.__name__}"
    return f"{type(v).__name__} {v!r}" if isinstance(v, (str, int, list)) else type(v).__name__
out = {p.__name__: {n: kind(getattr(p, n)) for n in [*p.__all__, "__version__"]}
       for p in (ccxt, ccxt.async_support)}
print(json.dumps(out))
"""


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def test_importing_ccxt_after_the_service_loads_no_exchange_until_one_is_used() -> None:
    code = """
import json, sys
import service, ccxt, ccxt.async_support as ccxt_async
from ccxt.base.errors import BadResponse
before = sorted(m for m in sys.modules if m.startswith("ccxt"))
client = ccxt_async.bybit()
after = sorted(m for m in sys.modules if m.startswith("ccxt"))
print(json.dumps({"before": before, "after": after, "exchanges": ccxt.exchanges,
                  "is_exchange": isinstance(client, ccxt_async.Exchange),
                  "error": issubclass(BadResponse, ccxt_async.BaseError)}))
"""
    seen = json.loads(_run(code))
    loaded = {m.rpartition(".")[2] for m in seen["before"]}
    assert len(seen["exchanges"]) > 100
    assert not loaded & set(seen["exchanges"]), sorted(loaded & set(seen["exchanges"]))
    assert len(seen["before"]) < 40  # the base classes and errors, not 331 modules
    assert set(seen["after"]) - set(seen["before"]) >= {
        "ccxt.async_support.bybit",
        "ccxt.abstract.bybit",
    }
    assert "ccxt.bybit" not in seen["after"]  # the async twin only
    assert seen["is_exchange"]
    assert seen["error"]


def test_every_name_the_packages_export_is_what_ccxts_own_import_gives() -> None:
    eager = json.loads(_run(DESCRIBE))
    lazy = json.loads(_run("import service\n" + DESCRIBE))
    assert set(eager) == {"ccxt", "ccxt.async_support"}
    assert len(eager["ccxt.async_support"]) > 100  # every exchange, the errors, the base
    assert lazy == eager


def test_an_exchange_whose_module_another_imported_first_is_still_the_class() -> None:
    code = """
import sys
import service, ccxt.async_support as ccxt_async
import ccxt.async_support.gate                        # the module, imported directly
usdm = ccxt_async.binanceusdm                         # imports ccxt.async_support.binance
assert ccxt_async.gate is sys.modules["ccxt.async_support.gate"].gate
assert ccxt_async.binance is sys.modules["ccxt.async_support.binance"].binance
assert issubclass(usdm, ccxt_async.binance)
assert "okx" in dir(ccxt_async)
try:
    ccxt_async.no_such_exchange
except AttributeError as exc:
    print(exc)
"""
    assert _run(code).strip() == "module 'ccxt.async_support' has no attribute 'no_such_exchange'"


def test_ccxt_imported_before_the_service_is_left_as_it_is() -> None:
    code = """
import ccxt.async_support, service, service.ccxt_lazy, sys
print(type(ccxt.async_support).__name__, "ccxt.async_support.okx" in sys.modules)
"""
    assert _run(code).split() == ["module", "True"]
