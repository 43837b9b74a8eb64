"""The frames of Gate's futures websocket (v4) and its contract listing, as typed msgspec
structs. What the venue sends is pasted in each docstring."""

from __future__ import annotations

from typing import Any

import msgspec

NO_DATA = msgspec.Raw(b"")


class Envelope(msgspec.Struct):
    """Every server frame: ``{"time":1677629168,"time_ms":1677629168840,"channel":
    "futures.tickers","event":"update","result":[...]}``; an ack carries ``"result":
    {"status":"success"}`` (``"fail"`` with an ``error`` object on a refusal); the answer to
    our ping is ``{"time":...,"time_ms":...,"channel":"futures.pong","event":"","result":
    null}``. Before 2023 ``time_ms`` was absent."""

    channel: str = ""
    event: str = ""
    time: int | None = None
    time_ms: int | None = None
    error: Any = None
    result: msgspec.Raw = msgspec.field(default_factory=lambda: NO_DATA)


class Status(msgspec.Struct):
    status: str = ""


class Ticker(msgspec.Struct):
    """One ``futures.tickers`` object (fields absent: unchanged):
    ``{"contract":"BTC_USDT","last":"23160.2",...,"total_size":"153482780",...,
    "mark_price":"23175.64","funding_rate":"0.0001","funding_rate_indicative":"0.0001",
    "index_price":"23173.35","quanto_base_rate":"",...}``. ``total_size`` is the open
    interest in contracts (a decimal text with the ``X-Gate-Size-Decimal: 1`` header)."""

    contract: str
    mark_price: str | None = None
    index_price: str | None = None
    funding_rate: str | None = None
    total_size: str | int | float | None = None


class Liquidation(msgspec.Struct):
    """One ``futures.public_liquidates`` row. Since 2026-08-20, ``time`` in ms and several
    rows per contract: ``{"price":"215.1","size":"-124.5","time":1541486601123,
    "contract":"BTC_USDT"}`` (``size`` an integer without the size header: ``-124``); before,
    ``time`` in seconds in the docs' samples, while the old table named the field
    ``time_ms`` (ms)."""

    contract: str
    price: str | float
    size: str | int | float
    time: int | None = None
    time_ms: int | None = None


class BookTicker(msgspec.Struct):
    """A ``futures.book_ticker`` result (the docs' example): ``{"t":1615366379123,
    "u":2517661076,"s":"BTC_USD","b":"54696.6","B":37000,"a":"54696.7","A":47061}``: the
    best bid ``b`` with ``B`` contracts, the best ask ``a`` with ``A``, ``t`` in ms, ``u`` the
    book's update id (not read: a top is a state, the newest wins). Prices are text, sizes
    JSON numbers (fractional on decimal contracts) or text."""

    s: str
    t: int
    b: str | float
    B: str | float
    a: str | float
    A: str | float


class Trade(msgspec.Struct):
    """One ``futures.trades`` row (the docs' example): ``{"size":-108,"id":27753479,
    "create_time":1545136464,"create_time_ms":1545136464123,"price":"96.4",
    "contract":"BTC_USD"}``: ``size`` in contracts, signed by the **taker** ("positive size
    means taker is buyer, negative seller"), text with ``X-Gate-Size-Decimal: 1``;
    ``is_internal`` true for the insurance fund's and ADL's takeover of a liquidation (no
    taker on the book)."""

    contract: str
    id: int
    size: str | float
    price: str | float
    create_time_ms: int | None = None
    create_time: float | None = None
    """Seconds (older frames: no ``create_time_ms``)."""
    is_internal: bool = False


class BookUpdate(msgspec.Struct):
    """A ``futures.obu`` result. The first after a subscription is the whole book
    (``full`` true, ``u`` its id, bids best first, asks best first):
    ``{"t":1747054612673,"full":true,"s":"ob.BTC_USDT.50","u":73777715168,
    "b":[["104027.1","509392"],...],"a":[...]}``; then the levels that changed between ids
    ``U`` and ``u``: ``{"t":...,"s":"ob.BTC_USDT.50","U":73777715169,"u":73777715175,
    "b":[["104027.1","0"]],"a":[...]}`` (size ``"0"``: gone; ``b``/``a`` absent: none
    changed, the id still moves). Decoded non-strict: the levels' text straight to floats."""

    s: str
    u: int
    t: int = 0
    full: bool = False
    U: int | None = None
    b: list[tuple[float, float]] = msgspec.field(default_factory=list)
    a: list[tuple[float, float]] = msgspec.field(default_factory=list)


class Contract(msgspec.Struct):
    """One row of ``GET /api/v4/futures/{settle}/contracts``: ``{"name":"BTC_USDT",
    "type":"direct","quanto_multiplier":"0.0001","funding_interval":28800,
    "funding_next_apply":1684944000,"in_delisting":false,...}``; BTC-settled ``BTC_USD`` is
    ``"type":"inverse"``."""

    name: str
    type: str = ""
    quanto_multiplier: str = ""
    funding_interval: int = 0
    """Seconds."""
    funding_next_apply: float = 0.0
    """Seconds: the coming settlement when the listing was read."""
    in_delisting: bool = False
    status: str = ""
    """``trading``, ``delisting``, ``delisted``; absent from older listings."""


envelope = msgspec.json.Decoder(Envelope)
raw_list = msgspec.json.Decoder(list[msgspec.Raw])
status = msgspec.json.Decoder(Status | None)
ticker = msgspec.json.Decoder(Ticker)
liquidation = msgspec.json.Decoder(Liquidation, strict=False)
book_ticker = msgspec.json.Decoder(BookTicker)
trades = msgspec.json.Decoder(list[Trade])
book_update = msgspec.json.Decoder(BookUpdate, strict=False)
contracts = msgspec.json.Decoder(list[Contract], strict=False)


def objects(raw: msgspec.Raw) -> list[msgspec.Raw]:
    """The objects of a ``result``, whatever its shape: an object, a list of objects or a
    list of lists of objects (all three were sent). Raises ``ValueError`` on anything else."""
    text = bytes(raw).lstrip()
    if text.startswith(b"{"):
        return [raw]
    if not text.startswith(b"["):
        raise ValueError("result is neither an object nor a list")
    out: list[msgspec.Raw] = []
    for item in raw_list.decode(raw):
        if bytes(item).lstrip().startswith(b"["):
            out.extend(raw_list.decode(item))
        else:
            out.append(item)
    return out
