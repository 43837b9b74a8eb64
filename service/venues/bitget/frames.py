"""The frames of Bitget's public websocket (v3 "UTA", and the v2 ticker) and of the v2
contracts listing, as typed msgspec structs. Numbers arrive as strings; what the venue sends
is pasted in each docstring."""

from __future__ import annotations

import msgspec

NO_DATA = msgspec.Raw(b"")


class Arg(msgspec.Struct):
    """v3: ``{"instType":"usdt-futures","topic":"ticker","symbol":"BTCUSDT"}``;
    v2: ``{"instType":"USDT-FUTURES","channel":"ticker","instId":"STORJUSDT"}``;
    the obsolete mix v1: ``{"instType":"mc","channel":"ticker","instId":"DASHUSDT"}``."""

    instType: str = ""
    topic: str = ""
    symbol: str = ""
    channel: str = ""
    instId: str = ""


class Envelope(msgspec.Struct):
    """A push (``action``, ``arg``, ``data``, ``ts``), an ack (``event`` subscribe) or an
    error (``event`` error, ``code``, ``msg``)."""

    event: str | None = None
    code: int | str | None = None
    arg: Arg | None = None
    action: str | None = None
    data: msgspec.Raw = msgspec.field(default_factory=lambda: NO_DATA)
    ts: int | None = None


class TickerRow(msgspec.Struct):
    """One row of a ``ticker`` push; a field absent from a row leaves the state unchanged.

    v3 (``openInterest``; no symbol or time in the row, both are in the envelope)::

        {"action":"snapshot","arg":{"instType":"usdt-futures","topic":"ticker","symbol":
        "BTCUSDT"},"data":[{"highPrice24h":"78237.7",...,"indexPrice":"76671.43816860553",
        "markPrice":"76631.3","fundingRate":"-0.00003","openInterest":"29539.3825",
        "deliveryTime":"","deliveryStartTime":"","deliveryStatus":"",
        "nextFundingTime":"1777363200000"}],"ts":1777358880084}

    v2 (``holdingAmount``; ``instId`` and ``ts`` in the row)::

        {"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":
        "STORJUSDT"},"data":[{"instId":"STORJUSDT","lastPr":"0.4706",...,"fundingRate":
        "0.0001","nextFundingTime":"1730361600000","markPrice":"0.4705","indexPrice":
        "0.47080586","holdingAmount":"8572031.1",...,"ts":"1730332823155"}],
        "ts":1730332823157}
    """

    markPrice: str | None = None
    indexPrice: str | None = None
    fundingRate: str | None = None
    nextFundingTime: str | int | None = None
    openInterest: str | None = None
    holdingAmount: str | None = None
    bid1Price: str | None = None
    """v3: the best bid; ``bid1Size``... its size, in base coin (v2: ``bidPr``, ``bidSz``)."""
    bid1Size: str | None = None
    ask1Price: str | None = None
    ask1Size: str | None = None
    bidPr: str | None = None
    bidSz: str | None = None
    askPr: str | None = None
    askSz: str | None = None
    instId: str = ""
    ts: str | int | None = None


class LiquidationRow(msgspec.Struct):
    """``{"action":"update","arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[
    {"symbol":"APEUSDT","side":"buy","price":"0.1649","amount":"13.70319",
    "ts":"1777358886549"},{"symbol":"IPUSDT","side":"buy","price":"0.500280739469",
    "amount":"143.330431857868","ts":"1777358876983"}],"ts":1777358897167}``"""

    symbol: str
    side: str
    price: str
    amount: str
    ts: int


class TradeRow(msgspec.Struct):
    """One print of a trades push; the symbol is the envelope's (``arg``).

    v3 ``publicTrade`` (``S`` the taker's side, ``v`` the size in base coin, ``T`` the fill
    time as text, ``i`` the trade id)::

        {"action":"update","arg":{"instType":"usdt-futures","topic":"publicTrade","symbol":
        "BTCUSDT"},"data":[{"i":"1432912492051054592","p":"76631.3","v":"0.01","S":"buy",
        "T":"1777358881008","L":"1432912492051054593","isRPI":"no"}],"ts":1777358881009}

    v2 ``trade`` (``side``, ``size``, ``price``, ``ts``, ``tradeId``)::

        {"action":"update","arg":{"instType":"COIN-FUTURES","channel":"trade","instId":
        "DOGEUSD"},"data":[{"ts":"1730332859962","price":"0.168385","size":"447","side":
        "buy","tradeId":"1235671063871070209"}],"ts":1730332859979}
    """

    S: str | None = None
    v: str | None = None
    p: str | None = None
    T: str | int | None = None
    side: str | None = None
    size: str | None = None
    price: str | None = None
    ts: str | int | None = None
    i: str | None = None
    tradeId: str | None = None


class BookRow(msgspec.Struct):
    """The one row of a v2 ``books15`` push (``books1``, ``books5`` alike): the best 15
    levels a side, best first, ``[price, size]`` as text (size in base coin), the whole book
    each push (``action`` always ``snapshot``). From the docs' example (``books5``)::

        {"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"books5","instId":
        "BTCUSDT"},"data":[{"asks":[["27000.5","8.760"],["27001.0","0.400"]],"bids":[[
        "27000.0","2.710"],["26999.5","1.460"]],"checksum":0,"seq":123,"pseq":122,
        "ts":"1695716059516"}]}

    (the envelope's ``ts`` is cut off in the docs' page as stored; the row's is read).
    ``seq``, ``pseq`` and ``checksum`` serve the incremental ``books`` channel: not read."""

    bids: list[list[str]]
    asks: list[list[str]]
    ts: str | int


class ContractRow(msgspec.Struct):
    """One row of ``GET /api/v2/mix/market/contracts?productType=USDT-FUTURES``:
    ``{"symbol":"BTCUSDT","baseCoin":"BTC","quoteCoin":"USDT",...,"sizeMultiplier":"0.001",
    "symbolType":"perpetual",...,"symbolStatus":"normal",...,"fundInterval":"8",...}``"""

    symbol: str
    baseCoin: str
    quoteCoin: str
    symbolType: str = ""
    symbolStatus: str = ""
    fundInterval: str = ""
    """Hours between settlements (``"8"``, ``"4"``, ``"1"``); may be empty."""


class ContractsPage(msgspec.Struct):
    """``{"code":"00000","msg":"success","requestTime":1695793701269,"data":[...]}``"""

    code: str
    data: list[ContractRow]
    msg: str = ""


envelope = msgspec.json.Decoder(Envelope)
tickers = msgspec.json.Decoder(list[TickerRow])
liquidations = msgspec.json.Decoder(list[LiquidationRow], strict=False)
trades = msgspec.json.Decoder(list[TradeRow])
books = msgspec.json.Decoder(list[BookRow])
