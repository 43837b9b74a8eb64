"""The frames of Hyperliquid's websocket and ``/info`` answers, as typed msgspec structs
(numbers arrive as strings and are decoded in lax mode). What the venue sends is pasted in
each docstring; fields we do not read are left out (msgspec ignores them)."""

from __future__ import annotations

import msgspec

from .._numbers import Finite

NO_DATA = msgspec.Raw(b"")


class Envelope(msgspec.Struct):
    """Every frame: ``{"channel": <name>, "data": <payload>}`` (``pong`` has no data)."""

    channel: str = ""
    data: msgspec.Raw = msgspec.field(default_factory=lambda: NO_DATA)


class AssetCtx(msgspec.Struct):
    """``{"funding":"0.00004863","openInterest":"18617460.0","prevDayPx":"0.20296",
    "dayNtlVlm":"7665220.55613","premium":"0.00008521","oraclePx":"0.1995",
    "markPx":"0.19963","midPx":"0.19957","impactPxs":["0.199517","0.199725"]}``; an idle
    market has ``"premium":null,"midPx":null,"impactPxs":null``."""

    funding: Finite
    """The funding rate per hour (Hyperliquid settles funding every hour)."""
    openInterest: Finite
    """In coin."""
    markPx: Finite
    oraclePx: Finite | None = None


class ActiveAssetCtx(msgspec.Struct):
    """``{"channel":"activeAssetCtx","data":{"coin":"MOODENG","ctx":{...}}}``"""

    coin: str
    ctx: AssetCtx


class FillLiquidation(msgspec.Struct):
    """``{"liquidatedUser":"0x360878d351f05975e25f1807a27895e1e5e004fb","markPx":"66607.0",
    "method":"market"}``; ``method`` is ``market`` (closed through the book) or
    ``backstop`` (taken over by the liquidator vault)."""

    liquidatedUser: str
    markPx: Finite | None = None
    method: str = ""


class Fill(msgspec.Struct):
    """One fill of one user: ``{"coin":"BTC","px":"66653.0","sz":"0.001","side":"A",
    "time":1781528065899,"startPosition":"-0.0213","dir":"Open Short","closedPnl":"0.0",
    "hash":"0xe29f...a0db","oid":55030848197,"crossed":false,"fee":"0.009997",
    "tid":745210434703679,"cloid":"0xe8d5...1463","liquidation":{...},"feeToken":"USDC",
    "twapId":null}``. ``side`` is the user's *order* side (``B`` buy, ``A`` sell); ``tid``
    identifies the trade, the same in both counterparties' fills."""

    coin: str
    px: Finite
    sz: Finite
    side: str
    time: int
    tid: int
    dir: str = ""
    liquidation: FillLiquidation | None = None


class UserFills(msgspec.Struct):
    """``{"channel":"userFills","data":{"isSnapshot":true,"user":"0x…","fills":[...]}}``:
    the first push after subscribing is a snapshot of recent fills (newest first)."""

    fills: list[Fill]
    user: str = ""
    isSnapshot: bool = False


class UserEvents(msgspec.Struct):
    """``{"channel":"user","data":{"fills":[...]}}`` (``userEvents``; its other variants,
    ``funding``, ``liquidation``, ``nonUserCancel``, carry no fills)."""

    fills: list[Fill] = msgspec.field(default_factory=list)


class Asset(msgspec.Struct):
    """One entry of ``meta.universe``: ``{"szDecimals":5,"name":"BTC","maxLeverage":40,
    "marginTableId":56}``; a delisted one adds ``"isDelisted":true``. The position in the
    list is the asset's index (what ``allDexsAssetCtxs`` is ordered by)."""

    name: str
    szDecimals: int = 0
    isDelisted: bool | None = None


class Meta(msgspec.Struct):
    """``POST /info {"type":"meta"}``: ``{"universe":[...],"marginTables":[...]}``."""

    universe: list[Asset]


class Level(msgspec.Struct):
    """One price level of ``bbo`` and ``l2Book``: ``{"px":"107575.0","sz":"3.87947","n":17}``
    (``sz`` in coin, the total resting at ``px``; ``n`` the orders, not read)."""

    px: Finite
    sz: Finite


class Bbo(msgspec.Struct):
    """``{"channel":"bbo","data":{"coin":"BTC","time":1750948919838,"bbo":[{"px":"107575.0",
    "sz":"3.87947","n":17},{"px":"107576.0","sz":"0.5","n":2}]}}``: ``[bid, ask]``, either
    ``null`` when that side of the book is empty."""

    coin: str
    time: int
    bbo: list[Level | None]


class Trade(msgspec.Struct):
    """``{"coin":"BTC","side":"A","px":"106296.0","sz":"0.00017","time":1751430933565,
    "hash":"0xde93...3503","tid":293353986402527,"users":["0xcc0a...","0xc64c..."]}``:
    ``side`` the taker's (``B`` bought, ``A`` sold), ``sz`` in coin."""

    coin: str
    side: str
    px: Finite
    sz: Finite
    time: int
    tid: int


class Book(msgspec.Struct):
    """``{"channel":"l2Book","data":{"coin":"BANANA","time":1730160007687,"levels":[[{"px":
    "59.8","sz":"3.4","n":1},...],[{"px":"59.811","sz":"2.9","n":1},...]]}}``: ``levels`` is
    ``[bids, asks]``, best first, the whole book (up to 20 levels a side)."""

    coin: str
    time: int
    levels: tuple[list[Level], list[Level]]


envelope = msgspec.json.Decoder(Envelope)
active_asset_ctx = msgspec.json.Decoder(ActiveAssetCtx, strict=False)
user_fills = msgspec.json.Decoder(UserFills, strict=False)
user_events = msgspec.json.Decoder(UserEvents, strict=False)
bbo = msgspec.json.Decoder(Bbo, strict=False)
trades = msgspec.json.Decoder(list[Trade], strict=False)
book = msgspec.json.Decoder(Book, strict=False)
