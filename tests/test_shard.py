"""Shards' ownership (:mod:`service.shard`): a partition of the instruments (collector shards)
and of the assets (detector shards), the same in every process; what a venue with a shard
subscribes to, and which components a shard's process may run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import VenueSettings
from service.shard import Shard, asset_hash, asset_owner, jump, owner
from service.venues import REGISTRY
from service.venues.base import Instrument

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

venues = st.sampled_from([*sorted(REGISTRY), "some_ccxt_venue"])
symbols = st.text(min_size=1, max_size=24)
instruments = st.lists(st.tuples(venues, symbols), min_size=1, max_size=200, unique=True)


@given(instruments, st.integers(1, 64))
def test_every_instrument_is_owned_by_exactly_one_shard(
    pairs: list[tuple[str, str]], count: int
) -> None:
    shards = [Shard(i, count) for i in range(count)]
    for venue, symbol in pairs:
        owners = [s.index for s in shards if s.owns(venue, symbol)]
        assert owners == [owner(venue, symbol, count)]


@given(instruments, st.integers(1, 63))
def test_one_more_shard_only_takes_instruments_for_itself(
    pairs: list[tuple[str, str]], count: int
) -> None:
    for venue, symbol in pairs:
        before, after = owner(venue, symbol, count), owner(venue, symbol, count + 1)
        assert after in (before, count)  # stays, or moves to the new shard: never elsewhere


def test_the_shards_share_the_instruments_about_evenly() -> None:
    pairs = [("bybit", f"SYM{i}USDT") for i in range(20_000)]
    for count in (2, 3, 4, 8):
        sizes = [0] * count
        for venue, symbol in pairs:
            sizes[owner(venue, symbol, count)] += 1
        assert max(sizes) / min(sizes) < 1.1, (count, sizes)


PINNED = {
    ("binance_usdm", "BTCUSDT", 2): 1,
    ("binance_usdm", "ETHUSDT", 2): 0,
    ("okx", "BTC-USDT-SWAP", 4): 0,
    ("bybit", "SOLUSDT", 8): 7,
    ("hyperliquid", "BTC", 3): 1,
}


def test_jump_hash_gives_the_reference_buckets() -> None:
    # The reference implementation's test vectors (key, buckets) -> bucket.
    vectors = {(1, 1): 0, (42, 57): 43, (0xDEAD10CC, 1): 0, (0xDEAD10CC, 666): 361,
               (256, 1024): 520}  # fmt: skip
    assert {k: jump(*k) for k in vectors} == vectors


def test_the_assignment_is_pinned() -> None:
    """A change of the hash would move instruments between running shards: never by accident."""
    got = {k: owner(k[0], k[1], k[2]) for k in PINNED}
    assert got == PINNED


@pytest.mark.parametrize("hash_seed", ["0", "1", "random"])
def test_the_assignment_is_the_same_in_another_process(hash_seed: str) -> None:
    pairs = [(v, f"{v[:3].upper()}{i}") for v in sorted(REGISTRY) for i in range(50)]
    code = (
        "import json, sys\n"
        "from service.shard import owner\n"
        "pairs = json.load(sys.stdin)\n"
        "print(json.dumps([[owner(v, s, n) for n in (2, 3, 5)] for v, s in pairs]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(pairs), capture_output=True, text=True,
        check=True, cwd=REPO, env={**os.environ, "PYTHONHASHSEED": hash_seed},
    ).stdout  # fmt: skip
    assert json.loads(out) == [[owner(v, s, n) for n in (2, 3, 5)] for v, s in pairs]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2/2", "below the shard count"),
        ("0/0", "between 1 and"),
        ("1", "must be I/N"),
        ("a/2", "must be I/N"),
        ("-1/2", "must be I/N"),
        ("0/2000", "between 1 and"),
    ],
)
def test_a_bad_shard_is_refused_saying_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Shard.parse(text)


def test_a_shard_reads_as_it_is_written() -> None:
    assert Shard.parse(" 1/3 ") == Shard(1, 3)
    assert str(Shard(1, 3)) == "1/3"
    assert not Shard(0, 1).sharded


def _markets(venue: str, symbols: list[str]) -> dict[str, Instrument]:
    return {s: Instrument(venue, s, s[:3], "USDT", linear=True) for s in symbols}


@pytest.mark.parametrize("configured", ["all", "some"])
def test_the_shards_of_a_venue_want_disjoint_sets_that_cover_it(configured: str) -> None:
    symbols = [f"S{i}USDT" for i in range(40)]
    markets = _markets("bybit", symbols)
    chosen = symbols if configured == "all" else symbols[::3]
    settings = VenueSettings(symbols="all" if configured == "all" else chosen)
    wanted = []
    for i in range(3):
        venue = REGISTRY["bybit"](settings)
        venue.shard = Shard(i, 3)
        got = venue.wanted(markets)
        assert got is not None
        assert set(venue.subscribed(markets)) == got  # subscribed: only its own
        wanted.append(got)
    assert all(wanted)
    assert set().union(*wanted) == set(chosen)
    assert sum(map(len, wanted)) == len(chosen)
    unsharded = REGISTRY["bybit"](settings)
    unsharded.shard = Shard(0, 1)
    assert unsharded.wanted(markets) == (None if configured == "all" else set(chosen))


def test_a_shard_runs_beside_the_api_but_never_beside_the_detector_or_alerts() -> None:
    from service.config import load_settings
    from service.errors import ConfigError
    from service.runtime import Component, Runtime

    settings = load_settings(set(REGISTRY), [], collect={"shard": "1/2"})
    for refused in ({Component.COLLECT, Component.DETECT}, set(Component)):
        with pytest.raises(ConfigError, match=r"collect\.shard is 1/2"):
            Runtime(settings, refused)
    # a shard serves its /metrics; a process that collects nothing ignores the shard
    for allowed in ({Component.COLLECT, Component.API}, {Component.DETECT, Component.ALERTS}):
        runtime = Runtime(settings, allowed)
        assert (Component.COLLECT in allowed) == bool(runtime.collectors)


def test_run_refuses_a_shard_outside_its_count_naming_the_option() -> None:
    from click.testing import CliRunner

    from service.cli import main

    result = CliRunner().invoke(main, ["run", "--only", "collect", "--shard", "2/2"])
    assert result.exit_code == 2
    assert "--shard" in result.output
    assert "below the shard count" in result.output


# -- detector shards: assets ----------------------------------------------------------------

assets = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=200, unique=True)


@given(assets, st.integers(1, 64))
def test_every_asset_is_owned_by_exactly_one_detector_shard(names: list[str], count: int) -> None:
    shards = [Shard(i, count) for i in range(count)]
    for asset in names:
        owners = [s.index for s in shards if s.owns_asset(asset)]
        assert owners == [asset_owner(asset, count)]


ASSETS_PINNED = {("BTC", 2): 0, ("ETH", 2): 1, ("SOL", 3): 2, ("DOGE", 3): 2, ("XRP", 4): 1}


def test_the_asset_assignment_is_pinned() -> None:
    """A change of the hash would move assets between running detector shards (their
    windows would be rebuilt by the new owner): never by accident."""
    assert {k: asset_owner(*k) for k in ASSETS_PINNED} == ASSETS_PINNED
    assert asset_owner("BTC", 7) == jump(asset_hash("BTC"), 7)
    assert Shard(0, 1).owns_asset("BTC")
    assert Shard(1, 2).owns_asset("ETH")
    assert not Shard(0, 2).owns_asset("ETH")


def test_the_detector_shard_comes_from_the_configuration_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from service.config import load_settings

    assert load_settings(set(REGISTRY), [], detect={"shard": " 1/3"}).detect.shard == Shard(1, 3)
    assert load_settings(set(REGISTRY), []).detect.shard is None
    monkeypatch.setenv("DELEVERAGE_DETECT__SHARD", "0/2")
    assert load_settings(set(REGISTRY), []).detect.shard == Shard(0, 2)


@pytest.mark.parametrize(("text", "problem"), [("2/2", "below the shard count"), ("x", "I/N")])
def test_a_bad_detector_shard_is_refused_naming_the_key(text: str, problem: str) -> None:
    from service.config import load_settings
    from service.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"detect\.shard.*{problem}"):
        load_settings(set(REGISTRY), [], detect={"shard": text})


def test_a_detector_shard_runs_beside_the_api_but_never_beside_collectors_or_alerts() -> None:
    from service.config import load_settings
    from service.errors import ConfigError
    from service.runtime import Component, Runtime

    settings = load_settings(set(REGISTRY), [], detect={"shard": "1/2"})
    for refused in ({Component.DETECT, Component.COLLECT}, {Component.DETECT, Component.ALERTS}):
        with pytest.raises(ConfigError, match=r"detect\.shard is 1/2"):
            Runtime(settings, refused)
    runtime = Runtime(settings, {Component.DETECT, Component.API})
    assert runtime.detector is not None
    assert runtime.detector.shard == Shard(1, 2)
    # a process that runs no detector ignores it; 0/1 is one detector of everything
    assert Runtime(settings, {Component.COLLECT}).detector is None
    whole = load_settings(set(REGISTRY), [], detect={"shard": "0/1"})
    detector = Runtime(whole, {Component.DETECT, Component.ALERTS}).detector
    assert detector is not None
    assert detector.shard is None


def test_run_sets_the_shard_of_the_component_it_runs() -> None:
    from click.testing import CliRunner

    from service.cli import main

    result = CliRunner().invoke(main, ["run", "--only", "detect", "--shard", "2/2"])
    assert result.exit_code == 2
    assert "--shard" in result.output
    assert "below the shard count" in result.output
    # --shard with every component: the collectors' shard refuses the detector beside it
    result = CliRunner().invoke(main, ["run", "--shard", "0/2"])
    assert result.exit_code == 1
    assert "collect.shard is 0/2" in result.output
