"""The frames of OKX's public websocket, as typed msgspec structs (numbers arrive as strings
and are decoded in lax mode). What the venue sends is pasted in each docstring."""

from __future__ import annotations

import msgspec

from .._numbers import Finite

NO_DATA = msgspec.Raw(b"")


class Arg(msgspec.Struct):
    channel: str = ""
    instId: str = ""
    instType: str = ""


class Envelope(msgspec.Struct):
    event: str | None = None
    arg: Arg | None = None
    action: str = ""
    """``books``: ``snapshot`` or ``update``; empty on the other channels."""
    data: msgspec.Raw = msgspec.field(default_factory=lambda: NO_DATA)


class Mark(msgspec.Struct):
    """``{"arg":{"channel":"mark-price","instId":"WNCG-USDT-SWAP"},"data":[{"instId":
    "WNCG-USDT-SWAP","instType":"SWAP","markPx":"2.1729","ts":"1640131259180"}]}``"""

    instId: str
    markPx: Finite
    ts: int


class OpenInterestRow(msgspec.Struct):
    """``{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instId":
    "BTC-USDT-SWAP","instType":"SWAP","oi":"2216113.01000000309","oiCcy":
    "22161.1301000000309","oiUsd":"1939251795.54769270396321","ts":"1743041250440"}]}``"""

    instId: str
    oi: Finite
    oiCcy: Finite
    ts: int
    oiUsd: str = ""


class FundingRow(msgspec.Struct):
    """``{"arg":{"channel":"funding-rate","instId":"BTC-USD-SWAP"},"data":[{"formulaType":
    "noRate","fundingRate":"0.0001875391284828","fundingTime":"1700726400000",
    "instId":"BTC-USD-SWAP","instType":"SWAP","method":"current_period",
    "nextFundingRate":"","nextFundingTime":"1700755200000","settState":"settled",
    "ts":"1700724675402",...}]}``; in 2021 only ``fundingRate``, ``fundingTime``,
    ``instId``, ``instType`` and ``nextFundingRate``."""

    instId: str
    fundingRate: str = ""
    fundingTime: str = ""
    nextFundingTime: str = ""
    ts: str = ""


class Detail(msgspec.Struct):
    bkPx: Finite
    sz: Finite
    ts: int
    side: str = ""
    posSide: str = ""


class LiquidationEntry(msgspec.Struct):
    """``{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[
    {"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13",
    "ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP",
    "instType":"SWAP","uly":"IOST-USDT"}]}``"""

    instId: str
    details: list[Detail]


class BookRow(msgspec.Struct):
    """``{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"snapshot","data":[{"asks":
    [["8476.98","415","0","13"],["8477","7","0","2"],...],"bids":[["8476.97","256","0",
    "12"],...],"ts":"1597026383085","checksum":-855196043,"prevSeqId":-1,"seqId":123456}]}``
    (the docs' example): each level ``[price, size in contracts, "0" (deprecated), orders]``
    as text, best first."""

    asks: list[list[str]]
    bids: list[list[str]]
    ts: int
    seqId: int
    prevSeqId: int = -1
    checksum: int = 0


class TickerRow(msgspec.Struct):
    """``{"arg":{"channel":"tickers","instId":"BTC-USDC-SWAP"},"data":[{"instType":"SWAP",
    "instId":"BTC-USDC-SWAP","last":"28620.3","lastSz":"241","askPx":"28618.8","askSz":"1200",
    "bidPx":"28618.7","bidSz":"600","open24h":"29303.8",...,"ts":"1681992000108"}]}`` (a real
    capture, the fields we read): every push carries the whole ticker, sizes in
    **contracts** (SWAP); a side without orders is ``""``."""

    instId: str
    ts: int
    bidPx: str = ""
    bidSz: str = ""
    askPx: str = ""
    askSz: str = ""


class TradeRow(msgspec.Struct):
    """``{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":
    "BTC-USDT-SWAP","tradeId":"148266905","px":"48938.5","sz":"5","side":"buy",
    "ts":"1640131236050"}]}`` (a real capture; today's pushes add ``count``, ``source`` and
    ``seqId``): one print per taker order, price and source, ``sz`` in **contracts** (SWAP),
    ``side`` the taker's, ``tradeId`` the last trade id of the print."""

    instId: str
    tradeId: str
    px: Finite
    sz: Finite
    side: str
    ts: int


envelope = msgspec.json.Decoder(Envelope)
books = msgspec.json.Decoder(list[BookRow], strict=False)
marks = msgspec.json.Decoder(list[Mark], strict=False)
open_interest = msgspec.json.Decoder(list[OpenInterestRow], strict=False)
funding = msgspec.json.Decoder(list[FundingRow], strict=False)
liquidations = msgspec.json.Decoder(list[LiquidationEntry], strict=False)
tickers = msgspec.json.Decoder(list[TickerRow], strict=False)
trades = msgspec.json.Decoder(list[TradeRow], strict=False)
