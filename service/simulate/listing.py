"""Listings at the market's real size (``deleverage bench market``).

The recorded listings (``service/venues/<venue>/simulator/data/``) are older and smaller than
what the venues list today, and a simulator lists only the perpetuals it simulates. Asked for
``listing_size`` perpetuals, a venue's simulator lists its simulated ones plus clones of one
recorded perpetual, its *template* (:attr:`~.server.VenueServer.TEMPLATE`), under synthetic
base assets (:func:`synthetic_bases`: ``Q0001``, ``Q0002``...). A clone is the template's
recorded row with the base asset's name replaced in every text value, so it keeps the venue's
shape: the symbol's spelling (``Q0001USDT``, ``Q0001-USDT-SWAP``, ``Q0001_USDC-PERPETUAL``),
contract type and size, settlement and filters; it is simulated like the template (the
template's :class:`~.market.SymbolSpec` under the new symbol). Every venue uses the same
bases in the same order, so a base is listed on every venue whose listing reaches it, as the
large coins are on every venue and the small ones on a few. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .market import SymbolSpec

BASE_PREFIX: Final = "Q"


def synthetic_bases(n: int) -> list[str]:
    """The first ``n`` synthetic base assets: ``Q0001``, ``Q0002``..."""
    return [f"{BASE_PREFIX}{i:04d}" for i in range(1, n + 1)]


def grow_specs(
    specs: Sequence[SymbolSpec], template: str | None, size: int | None
) -> tuple[tuple[SymbolSpec, ...], dict[str, str]]:
    """``specs`` plus clones of the spec of symbol ``template``, up to ``size`` in all; and
    the clones' symbols with their base (``{}`` when there are none). ``size`` ``None``
    or no larger than ``specs``: no clone."""
    if size is None or size <= len(specs):
        return tuple(specs), {}
    if template is None:
        raise ValueError("this simulator has no template perpetual to grow its listing from")
    spec = next((s for s in specs if s.symbol == template), None)
    if spec is None:
        raise ValueError(f"template {template!r} is not among the simulated symbols")
    clones = {rename(spec.symbol, spec.base, b): b for b in synthetic_bases(size - len(specs))}
    grown = [dataclasses.replace(spec, symbol=s, base=b) for s, b in clones.items()]
    return (*specs, *grown), clones


def rename(text: str, old: str, new: str) -> str:
    """``text`` with the base ``old`` spelled ``new``, in upper and lower case (Deribit's
    ``price_index`` is ``eth_usdc``)."""
    return text.replace(old, new).replace(old.lower(), new.lower())


def renamed(value: Any, old: str, new: str) -> Any:
    """A copy of a decoded JSON value with :func:`rename` applied to every text value (the
    keys are left alone)."""
    if isinstance(value, str):
        return rename(value, old, new)
    if isinstance(value, list):
        return [renamed(v, old, new) for v in value]
    if isinstance(value, dict):
        return {k: renamed(v, old, new) for k, v in value.items()}
    return value


def grow_rows(
    rows: Sequence[Mapping[str, Any]],
    key: str,
    template: SymbolSpec,
    clones: Mapping[str, str],
) -> list[dict[str, Any]]:
    """``rows`` (a listing's instrument rows, each naming its symbol in ``key``) plus one
    clone of the template's row per entry of ``clones`` (symbol -> base), in order. Rows
    without the template (another category's list) come back unchanged (a new list)."""
    out = [dict(r) for r in rows]
    row = next((r for r in rows if r.get(key) == template.symbol), None)
    if row is None:
        return out
    for symbol, base in clones.items():
        clone: dict[str, Any] = renamed(row, template.base, base)
        if clone[key] != symbol:
            raise ValueError(f"the clone of {template.symbol} is named {clone[key]}, not {symbol}")
        out.append(clone)
    return out
