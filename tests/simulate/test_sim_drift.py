"""The simulators' protocol drift switch (:mod:`service.simulate.drift`): what it does to the
frames each way, how it is spelled on the command line, and a drifted simulator on the wire."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from simkit import collect
from websockets.asyncio.client import connect

from service.cli import main
from service.simulate.drift import ProtocolDrift
from service.venues.bybit.simulator.server import BybitSimulator


def test_a_retired_channel_is_renamed_in_what_clients_send_only() -> None:
    drift = ProtocolDrift.parse("retire_channel=tickers")
    sent = b'{"op":"subscribe","args":["tickers.BTCUSDT","allLiquidation.BTCUSDT","xtickers.A"]}'
    assert drift.incoming(sent) == (
        b'{"op":"subscribe","args":["tickers_retired.BTCUSDT","allLiquidation.BTCUSDT",'
        b'"xtickers.A"]}'
    )
    assert drift.outgoing(b'{"topic":"tickers.BTCUSDT"}') == b'{"topic":"tickers.BTCUSDT"}'
    dotted = ProtocolDrift.parse("retire_channel=futures.tickers")
    assert dotted.incoming(b'"channel":"futures.tickers"') == b'"channel":"futures.tickers_retired"'


def test_a_renamed_field_and_a_silenced_channel_change_what_the_server_sends() -> None:
    drift = ProtocolDrift.parse("rename_field=markPrice:markPx").merge(
        ProtocolDrift.parse(r'silence=^\{"topic":"allLiquidation')
    )
    assert drift.outgoing(b'{"topic":"tickers.X","data":{"markPrice":"1"}}') == (
        b'{"topic":"tickers.X","data":{"markPx":"1"}}'
    )
    assert drift.outgoing(b'{"topic":"allLiquidation.X","data":[]}') is None
    assert drift.incoming(b"anything") == b"anything"


@pytest.mark.parametrize(
    "spec", ["", "rename=a:b", "rename_field=a", "rename_field=:b", "silence=(", "silence="]
)
def test_a_bad_drift_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match=r"drift|rename_field|missing|unterminated"):
        ProtocolDrift.parse(spec)


def test_the_command_line_names_a_bad_drift() -> None:
    result = CliRunner().invoke(main, ["simulate", "--drift", "nowhere:silence=x"])
    assert result.exit_code == 2
    assert "--drift" in result.output
    result = CliRunner().invoke(main, ["simulate", "--drift", "bybit:rename_field=x"])
    assert result.exit_code == 2
    assert "rename_field takes <old>:<new>" in result.output


async def test_a_drifted_simulator_sends_the_renamed_field() -> None:
    async with BybitSimulator() as sim:
        sim.drift = ProtocolDrift(rename_field=("markPrice", "markPx"))
        async with connect(f"{sim.ws_base_url}/linear") as ws:
            await ws.send('{"req_id":"1","op":"subscribe","args":["tickers.BTCUSDT"]}')
            frames = [json.loads(f) for f in await collect(ws, 0.5)]
    ack, snapshot = frames[0], frames[1]
    assert ack["success"] is True
    assert "markPx" in snapshot["data"]
    assert "markPrice" not in snapshot["data"]
