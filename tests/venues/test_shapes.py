"""Each venue's shape (``service/venues/<venue>/shape.py``): its classifier on the venues' own
frames (documented or recorded samples), and its fields against the documented shapes: none
unknown, none missing; a drifted row is told apart."""

from __future__ import annotations

from typing import Any

import pytest

from service.venues import SHAPES
from service.venues.shape import FieldCount, Seen, decode

# (venue, frame as the venue sends it, kind, channel or channels named, request answered)
PROTOCOL: list[tuple[str, str, str, Any, str | None]] = [
    ("binance_usdm", '{"result":null,"id":1}', "ack", None, "1"),
    ("binance_usdm", '{"error":{"code":2,"msg":"Invalid request"},"id":3}', "refused", None, "3"),
    ("bybit", '{"success":true,"ret_msg":"","conn_id":"3cd8","req_id":"linear-1:1",'
              '"op":"subscribe"}', "ack", None, "linear-1:1"),
    ("bybit", '{"success":false,"ret_msg":"Invalid symbol :[tickers.NOPE]","conn_id":"x",'
              '"req_id":"linear-1:2","op":"subscribe"}', "refused", ("tickers",), "linear-1:2"),
    ("bybit", '{"success":true,"ret_msg":"pong","conn_id":"4657","req_id":"","op":"ping"}',
     "keepalive", None, None),
    ("okx", '{"id":"1512","event":"subscribe","arg":{"channel":"funding-rate","instId":'
            '"BTC-USD-SWAP"},"connId":"a4d3ae55"}', "ack", ("funding-rate",), "1512"),
    ("okx", '{"event":"error","msg":"channel:mark-price,instId:LTC-USD doesn\'t exist",'
            '"code":"60018"}', "refused", ("mark-price",), None),
    ("okx", "pong", "keepalive", None, None),
    ("deribit", '{"jsonrpc":"2.0","id":2,"result":["ticker.BTC-PERPETUAL.100ms",'
                '"trades.BTC-PERPETUAL.100ms"],"usIn":1,"usOut":2,"usDiff":1,"testnet":false}',
     "ack", ("ticker", "trades"), "2"),
    ("deribit", '{"params":{"type":"test_request"},"method":"heartbeat","jsonrpc":"2.0"}',
     "keepalive", None, None),
    ("deribit", '{"jsonrpc":"2.0","id":"heartbeat-3","result":{"version":"1.2.26"}}',
     "keepalive", None, None),
    ("bitmex", '{"success":true,"subscribe":"instrument:XBTUSD","request":{"op":"subscribe",'
               '"args":["instrument:XBTUSD"]}}', "ack", ("instrument",), None),
    ("bitmex", '{"status":400,"error":"Unknown table: liquidatio","meta":{},"request":{"op":'
               '"subscribe","args":["liquidatio:XBTUSD"]}}', "refused", None, None),
    ("hyperliquid", '{"channel":"subscriptionResponse","data":{"method":"subscribe",'
                    '"subscription":{"type":"activeAssetCtx","coin":"SOL"}}}',
     "ack", ("activeAssetCtx",), None),
    ("hyperliquid", '{"channel":"pong"}', "keepalive", None, None),
    ("bitget", '{"event":"subscribe","arg":{"instType":"usdt-futures","topic":"liquidation"},'
               '"connId":"x"}', "ack", ("liquidation",), None),
    ("gateio", '{"time":1,"time_ms":1000,"channel":"futures.tickers","event":"subscribe",'
               '"result":{"status":"success"}}', "ack", ("futures.tickers",), None),
    ("gateio", '{"time":1545404023,"time_ms":1545404023123,"channel":"futures.pong","event":"",'
               '"result":null}', "keepalive", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("venue", "frame", "kind", "channels", "answers"), PROTOCOL)
def test_protocol_frames_are_told_apart(
    venue: str, frame: str, kind: str, channels: Any, answers: str | None
) -> None:
    seen = SHAPES[venue].classify(decode(frame))
    assert (seen.kind, seen.channels, seen.request) == (kind, channels, answers)


def test_a_subscription_request_names_its_channels() -> None:
    bybit = SHAPES["bybit"].requested(
        '{"req_id":"linear-1:1","op":"subscribe","args":["tickers.BTCUSDT",'
        '"allLiquidation.BTCUSDT"]}'
    )
    assert bybit == ("linear-1:1", frozenset({"tickers", "allLiquidation"}))
    binance = SHAPES["binance_usdm"].requested(
        '{"method":"SUBSCRIBE","params":["!markPrice@arr@1s","!forceOrder@arr"],"id":1}'
    )
    assert binance == ("1", frozenset({"markPrice", "forceOrder"}))
    deribit = SHAPES["deribit"].requested(
        '{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":30}}'
    )
    assert deribit == (None, frozenset())  # not a subscription
    answer = Seen("refused", request="linear-1:1", detail="x")
    assert SHAPES["bybit"].answer_channels(answer, {"linear-1:1": bybit[1]}) == {
        "tickers",
        "allLiquidation",
    }


# Documented or recorded frames of each channel in its current shape.
CURRENT: list[tuple[str, str]] = [
    ("binance_usdm", '{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":'
     '1597536008000,"s":"BTCUSDT","p":"11857.56000000","i":"11851.86949091","P":"11852.0",'
     '"r":"0.00015640","T":1597564800000}}'),
    ("binance_usdm", '{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1584059031426,'
     '"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"0.014","p":"4793.91","ap":'
     '"4706.04","X":"FILLED","l":"0.015","z":"0.014","T":1584059031421}}}'),
    ("binance_usdm", '{"stream":"bnbusdt@bookTicker","data":{"e":"bookTicker","u":400900217,'
     '"E": 1568014460893,"T": 1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000",'
     '"a":"25.36520000","A":"40.66000000"}}'),
    ("binance_coinm", '{"stream":"!bookTicker","data":{"e":"bookTicker","u":17242169,"s":'
     '"BTCUSD_200626","ps":"BTCUSD","b":"9548.1","B":"52","a":"9548.5","A":"11","T":'
     '1591268628155,"E":1591268628166}}'),
    ("binance_usdm", '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":123456789,"s":'
     '"BTCUSDT","a":5933014,"p":"0.001","q":"100","nq":"100","f":100,"l":105,"T":123456785,'
     '"m":true}}'),
    ("bybit", '{"topic":"allLiquidation.PIPPINUSDT","type":"snapshot","ts":1740480207578,'
     '"data":[{"T":1740480207110,"s":"PIPPINUSDT","S":"Sell","v":"2846","p":"0.02456"}]}'),
    ("okx", '{"arg":{"channel":"open-interest","instId":"BTC-USDT-SWAP"},"data":[{"instId":'
     '"BTC-USDT-SWAP","instType":"SWAP","oi":"2216113.01000000309","oiCcy":'
     '"22161.1301000000309","oiUsd":"1939251795.54769270396321","ts":"1743041250440"}]}'),
    ("okx", '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{'
     '"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13",'
     '"ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":'
     '"SWAP","uly":"IOST-USDT"}]}'),
    ("deribit", '{"jsonrpc":"2.0","method":"subscription","params":{"channel":'
     '"trades.BTC-PERPETUAL.raw","data":[{"trade_seq":40782080,"trade_id":"66460626",'
     '"timestamp":1584058067675,"tick_direction":3,"price":4458.5,"liquidation":"M",'
     '"instrument_name":"BTC-PERPETUAL","index_price":4793.6,"direction":"buy","amount":2500}]}}'),
    ("bitmex", '{"table":"liquidation","action":"insert","data":[{"orderID":'
     '"dd9cea25-207c-0dab-15b5-b88da776f500","symbol":"XBTUSD","side":"Buy","price":10106,'
     '"leavesQty":9214}]}'),
    ("hyperliquid", '{"channel":"activeAssetCtx","data":{"coin":"MOODENG","ctx":{"funding":'
     '"0.00004863","openInterest":"18617460.0","prevDayPx":"0.20296","dayNtlVlm":'
     '"7665220.55613","premium":"0.00008521","oraclePx":"0.1995","markPx":"0.19963","midPx":'
     '"0.19957","impactPxs":["0.199517","0.199725"]}}}'),
    ("hyperliquid", '{"channel":"bbo","data":{"coin":"@162","time":1750948919838,"bbo":[{"px":'
     '"0.97925","sz":"4144.6","n":1},{"px":"0.97934","sz":"50.0","n":1}]}}'),  # tardis-node
    ("hyperliquid", '{"channel":"trades","data":[{"coin":"BTC","side":"A","px":"106296.0",'
     '"sz":"0.00017","time":1751430933565,"hash":"0xde93a8a0729ade63d8840417805ba9010b008818422'
     'ddedb1285744426b73503","tid":293353986402527,"users":["0xcc0a3b6e3267c84361e91d8230868eea'
     '53431e4b","0xc64cc00b46101bd40aa1c3121195e85c0b0918d8"]}]}'),  # the venue's book server
    ("bitget", '{"action":"update","arg":{"instType":"usdt-futures","topic":"liquidation"},'
     '"data":[{"symbol":"APEUSDT","side":"buy","price":"0.1649","amount":"13.70319",'
     '"ts":"1777358886549"}],"ts":1777358897167}'),
    ("gateio", '{ "channel": "futures.public_liquidates", "event": "update", "time": '
     '1541505434, "time_ms": 1541505434123, "result": [ { "price": "215.1", "size": "-124.5", '
     '"time": 1541486601123, "contract": "BTC_USDT" }, { "price": "215.2", "size": "-10.5", '
     '"time": 1541486601456, "contract": "BTC_USDT" } ] }'),
]  # fmt: skip


def _fields(venue: str, frame: str) -> FieldCount:
    shape = SHAPES[venue]
    seen = shape.classify(decode(frame))
    assert seen.kind == "data"
    assert seen.channel is not None
    channel = shape.channel(seen.channel)
    assert channel is not None
    count = FieldCount()
    count.add(channel, seen)
    return count


@pytest.mark.parametrize(("venue", "frame"), CURRENT)
def test_current_frames_have_no_unknown_or_missing_field(venue: str, frame: str) -> None:
    count = _fields(venue, frame)
    assert count.rows >= 1
    assert (count.unknown, count.missing) == ({}, {})


def test_a_nested_field_renamed_is_missing_where_its_parent_holds_rows() -> None:
    frame = next(f for v, f in CURRENT if v == "okx" and "liquidation-orders" in f)
    count = _fields("okx", frame.replace('"bkPx"', '"bankruptcyPx"'))
    assert count.missing == {"details.bkPx": 1}
    assert count.unknown == {"details.bankruptcyPx": 1}
    empty = (
        '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[],'
        '"instFamily":"A-USDT","instId":"A-USDT-SWAP","instType":"SWAP","uly":"A-USDT"}]}'
    )
    assert _fields("okx", empty).missing == {}  # no detail rows: nothing lacks a field


def test_the_old_gate_row_of_the_time_ms_table_lacks_time() -> None:
    old = (
        '{"channel":"futures.public_liquidates","event":"update","time":1,"result":[{"price":'
        '"215.1","size":"-124.5","time_ms":1541486601123,"contract":"BTC_USDT"}]}'
    )
    count = _fields("gateio", old)
    assert count.missing == {"time": 1}
    assert count.unknown == {}  # time_ms is a field the parser still reads


@pytest.mark.parametrize("venue", sorted(SHAPES))
def test_hostile_frames_are_other_never_an_error(venue: str) -> None:
    hostile: list[str | bytes] = [
        '{"a":' * 1000 + "1" + "}" * 1000, b"\xff\xfe\x00junk", "", "[]", "null", "1e400",
        '{"topic":7,"channel":[],"arg":"x","table":{},"params":3,"stream":1}',
        '{"event":"subscribe","arg":[],"result":[1,{"a":2}],"method":"subscription"}',
    ]  # fmt: skip
    for frame in hostile:
        seen = SHAPES[venue].classify(decode(frame))
        assert seen.kind in ("other", "ack", "refused", "data")
        count = FieldCount()
        channel = SHAPES[venue].channel(seen.channel or "")
        if channel is not None:
            count.add(channel, seen)
