"""Deribit's JSON-RPC frames as typed msgspec structs, the instrument list, and the requests we
send. Pure: no I/O. What the venue sends is pasted in each docstring.

Units (https://docs.deribit.com, ``public/get_instruments``, ``ticker`` and ``trades``
channels): ``amount`` and ``open_interest`` are **USD** on inverse contracts (``BTC-PERPETUAL``,
``ETH-PERPETUAL``; ``future_type`` ``reversed``) and **base coin** on linear ones
(``*_USDC-PERPETUAL``). ``contract_size`` is only the step of ``amount`` (10 USD for
``BTC-PERPETUAL``, 0.001 BTC for ``BTC_USDC-PERPETUAL``), so an :class:`Instrument`'s native
unit is 1 USD (inverse) or 1 coin (linear).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import msgspec

from ...events import Side
from .._numbers import Finite
from ..base import Instrument

VENUE: Final = "deribit"
INTERVAL: Final = "100ms"
"""``raw`` channels need authentication; ``100ms`` is the finest public interval."""
CHANNELS_PER_REQUEST: Final = 100
"""~20 perpetuals' channels of a kind fit in one request; subscribe requests are rate limited
(3,000 credits each, 30,000 at most, 10,000 refilled a second: a burst of 10, then ~3.3/s)."""
HEARTBEAT_INTERVAL_S: Final = 30
"""Our ``public/set_heartbeat`` interval (the venue's minimum is 10 s)."""
FUNDING_BASIS_H: Final = 8.0
"""Deribit quotes ``current_funding`` and ``funding_8h`` as rates per 8 hours; funding
accrues continuously (every ms), not at settlements."""
TICKER: Final = "ticker"
"""``ticker.{instrument}.100ms``: mark, index, funding, open interest, best bid and ask."""
TRADES: Final = "trades"
"""``trades.{instrument}.100ms``: every trade, liquidations flagged."""
BOOK: Final = "book"
"""``book.{instrument}.100ms``: the whole book, then the levels that changed."""
PING_ID: Final = "heartbeat"
"""The prefix of our ``public/test`` keep-alive ids (``heartbeat-1``, ``heartbeat-2``...),
echoed in the answers: the answers and the venue's ``heartbeat`` frames then share one
marker (see :mod:`.venue`)."""

NO_DATA: Final = msgspec.Raw(b"")
_SIDE_OF_SELLER: Final = {"sell": Side.LONG, "buy": Side.SHORT}
"""The position a liquidated taker closed, by taker ``direction``: a sell closes a long."""


class Envelope(msgspec.Struct):
    """A notification (``method`` ``subscription`` or ``heartbeat``, with ``params``) or a
    response to one of our requests (``id`` with ``result`` or ``error``)."""

    jsonrpc: str = ""
    id: int | str | None = None
    method: str | None = None
    params: msgspec.Raw = NO_DATA
    result: msgspec.Raw = NO_DATA
    error: msgspec.Raw = NO_DATA


class Params(msgspec.Struct):
    channel: str = ""
    type: str = ""
    """Of a ``heartbeat``: ``heartbeat`` or ``test_request``."""
    data: msgspec.Raw = NO_DATA


class Ticker(msgspec.Struct):
    """``{"jsonrpc":"2.0","method":"subscription","params":{"channel":
    "ticker.BTC-PERPETUAL.100ms","data":{"timestamp":1765541474086,"state":"open",...,
    "index_price":92263.55,"instrument_name":"BTC-PERPETUAL","last_price":92283.5,...,
    "open_interest":1132329370.0,"mark_price":92281.78,"interest_value":
    0.0028213400122472977,...,"current_funding":0.0,"funding_8h":1.742e-05}}}``
    (the fields we read)."""

    instrument_name: str
    timestamp: int
    mark_price: float
    index_price: float | None = None
    open_interest: float | None = None
    current_funding: float | None = None
    funding_8h: float | None = None
    best_bid_price: float | None = None
    """``null`` or 0 with no bid; ``best_bid_amount``: its size (USD on inverse contracts,
    coin on linear ones, as ``open_interest``)."""
    best_bid_amount: float | None = None
    best_ask_price: float | None = None
    best_ask_amount: float | None = None


class Trade(msgspec.Struct):
    """``{"jsonrpc":"2.0","method":"subscription","params":{"channel":
    "trades.BTC-PERPETUAL.raw","data":[{"trade_seq":40781986,"trade_id":"66460463",
    "timestamp":1584058044032,"tick_direction":3,"price":4469.5,"liquidation":"T",
    "instrument_name":"BTC-PERPETUAL","index_price":4805.41,"direction":"sell",
    "amount":1120}]}}``; ``liquidation`` only on liquidation trades."""

    trade_id: str | int
    instrument_name: str
    timestamp: int
    price: float
    amount: float
    direction: str
    liquidation: str | None = None


class BookData(msgspec.Struct):
    """``{"jsonrpc":"2.0","method":"subscription","params":{"channel":
    "book.BTC-PERPETUAL.100ms","data":{"type":"snapshot","timestamp":1554373962454,
    "instrument_name":"BTC-PERPETUAL","change_id":297217,"bids":[["new",5042.34,30],
    ["new",5041.94,20]],"asks":[["new",5042.64,40],["new",5043.3,40]]}}}`` (the docs'
    snapshot); a ``change`` adds ``prev_change_id`` and carries ``[action, price, amount]``
    with ``action`` ``new``, ``change`` or ``delete``. ``amount`` as the ticker's: USD on
    inverse, coin on linear perpetuals."""

    type: str
    timestamp: int
    instrument_name: str
    change_id: int
    bids: list[tuple[str, Finite, Finite]]
    asks: list[tuple[str, Finite, Finite]]
    prev_change_id: int | None = None


envelope = msgspec.json.Decoder(Envelope)
params = msgspec.json.Decoder(Params)
ticker = msgspec.json.Decoder(Ticker)
trades = msgspec.json.Decoder(list[Trade])
book = msgspec.json.Decoder(BookData)


def liquidated_sides(flag: str, direction: str) -> tuple[Side, ...] | None:
    """The sides of the positions a liquidation trade closed, from its ``liquidation`` flag
    and the taker's ``direction``; ``None`` when either is not one we know.

    ``T``: the taker was liquidated (a selling taker closed a long). ``M``: the maker was,
    on the other side of the taker (a buying taker met a liquidated long's sell). ``MT``:
    both were, so the trade's whole ``amount`` closed a liquidated long *and* a liquidated
    short: two liquidations of the full amount, the taker's first.
    """
    taker = _SIDE_OF_SELLER.get(direction)
    if taker is None:
        return None
    maker = Side.SHORT if taker is Side.LONG else Side.LONG
    return {"T": (taker,), "M": (maker,), "MT": (taker, maker)}.get(flag)


class InstrumentRow(msgspec.Struct):
    """One row of ``public/get_instruments``: ``{"tick_size":0.5,...,"settlement_period":
    "perpetual","settlement_currency":"BTC","quote_currency":"USD","kind":"future",
    "is_active":true,"instrument_name":"BTC-PERPETUAL","future_type":"reversed",
    "counter_currency":"USD","contract_size":10.0,"base_currency":"BTC",...}``. Rows of
    2021 lack ``future_type``, ``settlement_currency`` and ``counter_currency``."""

    instrument_name: str
    kind: str
    base_currency: str
    quote_currency: str
    settlement_period: str = ""
    is_active: bool = True
    counter_currency: str = ""
    future_type: str = ""
    instrument_type: str = ""


class InstrumentsBody(msgspec.Struct):
    result: list[InstrumentRow]


def is_linear(row: InstrumentRow) -> bool:
    """``future_type`` (or its newer twin ``instrument_type``) when given; else a contract
    quoted in USD is inverse and one quoted in a stablecoin (USDC) linear."""
    kind = row.future_type or row.instrument_type
    if kind in ("linear", "reversed"):
        return kind == "linear"
    return row.quote_currency != "USD"


def instruments(payload: Mapping[str, Any] | bytes | str) -> list[Instrument]:
    """The active perpetuals of a ``public/get_instruments`` answer. Raises ``ValueError``
    (msgspec's errors included) on an error answer or an unexpected shape."""
    if isinstance(payload, Mapping):
        body = msgspec.convert(payload, InstrumentsBody, strict=False)
    else:
        body = msgspec.json.decode(payload, type=InstrumentsBody, strict=False)
    out: list[Instrument] = []
    for row in body.result:
        if row.kind != "future" or row.settlement_period != "perpetual" or not row.is_active:
            continue
        out.append(
            Instrument(
                venue=VENUE,
                symbol=row.instrument_name,
                base=row.base_currency,
                quote=row.counter_currency or row.quote_currency,
                linear=is_linear(row),
                contract_size=1.0,  # amounts are in USD (inverse) or coin (linear)
                funding_interval_h=FUNDING_BASIS_H,
            )
        )
    return out


def channels(symbols: Iterable[str], kind: str) -> list[str]:
    """Per perpetual, its ``kind`` channel: :data:`TICKER` (mark, index, funding, open
    interest, top of book), :data:`TRADES` (every trade; their liquidation flags are the
    complete liquidation tape) or :data:`BOOK`."""
    return [f"{kind}.{s}.{INTERVAL}" for s in sorted(symbols)]


def book_channels(symbols: Iterable[str]) -> list[str]:
    """Per perpetual, its order book (a snapshot, then the levels that changed)."""
    return channels(symbols, BOOK)


def request(req_id: int | str, method: str, params_: Mapping[str, Any]) -> str:
    return json.dumps(
        {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params_},
        separators=(",", ":"),
    )


def pings() -> Callable[[], str]:
    """A new ``public/test`` request at each call, ids ``heartbeat-1``, ``heartbeat-2``...:
    Deribit's JSON-RPC overview says a request id "must be unique within the connection
    context" (https://docs.deribit.com/articles/json-rpc-overview), so each connection
    takes its own sequence (the subscribe requests use the integers 1, 2...)."""
    numbers = itertools.count(1)
    return lambda: request(f"{PING_ID}-{next(numbers)}", "public/test", {})


SET_HEARTBEAT: Final = request(1, "public/set_heartbeat", {"interval": HEARTBEAT_INTERVAL_S})


def session_requests(symbols: Iterable[str], kind: str) -> tuple[str, ...]:
    """What a connection sends once open: ``public/set_heartbeat``, then ``public/subscribe``
    requests of the ``kind`` channels of ``symbols`` (:func:`channels`),
    :data:`CHANNELS_PER_REQUEST` each (ids 2, 3...)."""
    chans = channels(symbols, kind)
    return (
        SET_HEARTBEAT,
        *(
            request(2 + i // CHANNELS_PER_REQUEST, "public/subscribe",
                    {"channels": chans[i : i + CHANNELS_PER_REQUEST]})
            for i in range(0, len(chans), CHANNELS_PER_REQUEST)
        ),
    )  # fmt: skip


def depth_requests(symbols: Iterable[str]) -> tuple[str, ...]:
    """What a depth connection sends once open: the book channels' session requests."""
    return session_requests(symbols, BOOK)
