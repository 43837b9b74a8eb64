"""A tenth venue written only for the tests (``example_venue/``), registered only here: one
more spec in ``service.venues.SPECS``, and it is collected, simulated and played with no
other edit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from example_venue import SPEC
from test_specs import venues_table
from websockets.asyncio.client import connect

import service.venues as venues
from service.cli import main
from service.config import VenueSettings
from service.events import Event, Liquidation, MarkPrice
from service.simulate.runner import run_forever


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example registered as a real venue is: its spec appended to ``SPECS`` (its one
    line), and what ``service/venues/__init__.py`` derives from that line at import."""
    monkeypatch.setattr(venues, "SPECS", (*venues.SPECS, SPEC))
    monkeypatch.setitem(venues.REGISTRY, SPEC.id, SPEC.venue)
    monkeypatch.setitem(venues.SHAPES, SPEC.id, SPEC.shape)
    monkeypatch.setitem(venues.SIMULATORS, SPEC.id, SPEC.simulate)
    monkeypatch.setitem(venues.PLAYERS, SPEC.id, SPEC.player)


@pytest.mark.usefixtures("registered")
def test_the_example_venue_gets_the_next_simulator_ports_and_a_docs_row() -> None:
    assert list(venues.SIMULATORS)[-1] == "example"
    assert venues_table().splitlines()[-1] == (
        "| `example` | `tests/venues/example_venue/` | 9418, 9419 | yes | `ExamplePlayer` |"
    )


@pytest.mark.usefixtures("registered")
async def test_the_simulator_runner_serves_the_example_venue_to_its_collector_side(
    tmp_path: Path,
) -> None:
    urls_file = tmp_path / "urls.json"
    task = asyncio.create_task(
        run_forever(venues.SIMULATORS, venues=["example"], urls_file=urls_file, time_scale=5.0)
    )
    try:
        for _ in range(100):
            if urls_file.exists():
                break
            await asyncio.sleep(0.05)
        urls = json.loads(urls_file.read_text())["example"]
        venue = venues.REGISTRY["example"](
            VenueSettings(ws_url=urls["ws_url"], rest_url=urls["rest_url"])
        )
        markets = await venue.load_markets(5.0)
        assert set(markets) == {"BTC-PERP", "ETH-PERP"}
        (conn,) = venue.connections(markets)
        parser = venue.new_parser(markets, None)
        events: list[Event] = []
        async with connect(conn.url) as ws:
            for message in conn.subscribe:
                await ws.send(message)
            async with asyncio.timeout(5):
                while not any(isinstance(e, MarkPrice) for e in events):
                    events += parser.parse(await ws.recv(), 0)
        assert parser.stats.errors == {}
        assert {e.symbol for e in events} == {"BTC-PERP", "ETH-PERP"}
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.usefixtures("registered")
def test_deleverage_evaluate_plays_the_example_venue() -> None:
    result = CliRunner().invoke(main, ["evaluate", "--suite", "synthetic", "--seeds", "1",
                                       "--kinds", "long_cascade", "--venues", "example",
                                       "--json", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["synthetic"]
    assert doc["command"]["venues"] == ["example"]
    assert doc["overall"]["runs"] == 1


def test_the_example_player_sends_every_kind_through_its_parser() -> None:
    from service.simulate.scenario import get_scenario

    player = SPEC.player(get_scenario("long_unwind"), 1, ["BTC", "ETH"])
    events: list[Event] = []
    for i in range(1, 61):
        events += player.step(1.0, 1_000_000 + i * 1000, quotes_due=True, online=True)
    assert player.parse_errors == 0
    assert {type(e).__name__ for e in events} == {
        "MarkPrice", "FundingRate", "OpenInterest", "Liquidation"
    }  # fmt: skip
    assert all(e.venue == "example" for e in events)
    assert any(isinstance(e, Liquidation) for e in events)


def test_without_the_fixture_the_example_is_registered_nowhere() -> None:
    assert "example" not in venues.REGISTRY
    assert SPEC not in venues.SPECS
