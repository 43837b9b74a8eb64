"""The live page in a real browser (Debian's Chromium, driven by chromedriver through
Selenium) against the running demo (``deleverage demo``: the simulators, a private Redis, the
whole service). It checks what a person would: the market's state is written out, the BTC
row leaves ``calm`` for the long side within a minute, the liquidation tape grows, the
browser logs no error; and the demo itself prints the page's URL first and no warning.
Screenshots (laptop light and dark, phone) are kept under ``artifacts/`` for CI.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
import redis.asyncio as aioredis  # noqa: E402
from procs_support import free_port, start_demo, stop  # noqa: E402
from publish_support import REDIS_URL  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from stream_support import serve  # noqa: E402

from service.config import Settings  # noqa: E402
from service.publish.api import create_app  # noqa: E402
from service.scores import Pressure, Scope, State, encode  # noqa: E402
from service.store import keys  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
LAPTOP = (1366, 900)
PHONE = (390, 844)
T = TypeVar("T")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
    ),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``deleverage demo`` as a person runs it; the page's URL and the demo's output."""
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    proc = start_demo(log, free_port())
    try:
        url = _wait(lambda: _page_url(log, proc), 60, "the demo's banner")
        yield url, log
    finally:
        stop(proc, 30)


def _page_url(log: Path, proc: subprocess.Popen[bytes]) -> str | None:
    if proc.poll() is not None:
        pytest.fail(f"the demo exited with {proc.returncode}:\n{log.read_text()}")
    match = re.search(r"open (http://\S+/) in a browser", log.read_text())
    return match[1] if match else None


def _wait(check: Callable[[], T | None], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what}: not seen within {timeout_s} s")


def _browser(size: tuple[int, int], scheme: str = "light", phone: bool = False) -> Any:
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={size[0]},{size[1]}", "--disable-gpu"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    if phone:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": size[0], "height": size[1], "deviceScaleFactor": 2, "mobile": True},
        )
    return driver


# Read through JavaScript, in one step: the page redraws its tables (new elements) twice a
# second, so an element found by one WebDriver call may be gone at the next.
def _text(driver: Any, css: str) -> str:
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : ''", css
    ))  # fmt: skip


def _attr(driver: Any, css: str, name: str) -> str | None:
    value = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) : null", css, name,
    )  # fmt: skip
    return None if value is None else str(value)


def _all_attr(driver: Any, css: str, name: str) -> list[str]:
    return [str(v) for v in driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " e => e.getAttribute(arguments[1]))", css, name,
    )]  # fmt: skip


def _count(driver: Any, css: str) -> int:
    return int(driver.execute_script(
        "return document.querySelectorAll(arguments[0]).length", css
    ))  # fmt: skip


def _errors(driver: Any) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _shot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


@pytest.mark.timeout(240)
def test_the_page_shows_btc_leaving_calm_for_the_long_side_and_a_growing_tape(
    demo: tuple[str, Path],
) -> None:
    url, log = demo
    driver = _browser(LAPTOP)
    try:
        driver.get(url)
        _wait(lambda: _text(driver, "#conn") == "live", 20, "the stream connected")
        states = r"(calm|building|unwinding|cascade)( · (long|short)s)?"
        market = _wait(
            lambda: re.fullmatch(states, _text(driver, "#market-state")), 20, "the market's state"
        )
        assert market is not None
        btc = '#grid tr[data-asset="BTC"] td.asset'
        first = _wait(lambda: _text(driver, btc), 20, "the BTC row")
        assert "calm" in first, first  # the simulators start calm
        tape_rows = _count(driver, "#tape tbody tr")
        left = _wait(
            lambda: re.search(r"(unwinding|cascade) · longs", _text(driver, btc)),
            60,
            "BTC leaving calm for the long side",
        )
        assert left is not None
        assert _attr(driver, btc, "data-state") in ("unwinding", "cascade")
        _wait(
            lambda: _count(driver, "#tape tbody tr") > tape_rows + 5,
            30,
            "the tape growing",
        )
        live = int(_text(driver, "#tape-count").split()[0].replace(",", ""))
        assert live > 0
        _wait(lambda: _count(driver, "#charts canvas") >= 3, 20, "the charts")
        _wait(  # the market follows its largest assets (breadth, dwell): a few seconds later
            lambda: re.search(r"(unwinding|cascade) · longs", _text(driver, "#market-state")),
            30, "the market leaving calm for the long side",
        )  # fmt: skip
        assert _text(driver, "#alerts li")  # the demo's rule opened alerts
        _shot(driver, "page-laptop-light.png")
        assert _errors(driver) == []
    finally:
        driver.quit()
    output = log.read_text()
    assert output.lstrip().startswith(f"deleverage demo: open {url} in a browser"), output[:400]
    noisy = [
        line for line in output.splitlines() if re.search(r"warning|error|Traceback", line, re.I)
    ]
    assert noisy == [], noisy


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("name", "size", "scheme", "phone"),
    [
        ("page-laptop-dark.png", LAPTOP, "dark", False),
        ("page-phone-light.png", PHONE, "light", True),
    ],
)
def test_the_page_reads_in_dark_mode_and_on_a_phone(
    demo: tuple[str, Path], name: str, size: tuple[int, int], scheme: str, phone: bool
) -> None:
    url, _ = demo
    driver = _browser(size, scheme, phone)
    try:
        driver.get(url)
        _wait(lambda: _text(driver, "#conn") == "live", 20, "the stream connected")
        _wait(lambda: _text(driver, '#grid tr[data-asset="BTC"]'), 20, "the BTC row")
        _wait(lambda: _count(driver, "#charts canvas") >= 3, 20, "the charts")
        background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        dark = [int(c) for c in re.findall(r"\d+", background)[:3]]
        assert (sum(dark) < 150) == (scheme == "dark"), background
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= size[0], f"the page scrolls sideways: {width} px"
        _shot(driver, name)
        assert _errors(driver) == []
    finally:
        driver.quit()


VENUES = [f"venue{v}" for v in range(10)]
ASSETS = [f"A{a:03d}" for a in range(100)]


def _scores(round_: int) -> list[Pressure]:
    """A detector round over 1,000 instruments (100 assets on 10 venues) and their assets."""
    now = int(time.time() * 1000)
    out = []
    for a, asset in enumerate(ASSETS):
        for v, venue in enumerate(VENUES):
            score = float((a * 7 + v * 3 + round_) % 100)
            out.append(Pressure(
                venue=venue, symbol=f"{asset}USDT", asset=asset, score=score,
                state=State.CASCADE if score > 90 else State.CALM, side=None,
                updated_ms=now, since_ms=now, forced_share=None, data_quality=1.0,
                features={}, reasons=[],
            ))  # fmt: skip
        out.append(Pressure(
            venue="*", symbol="*", asset=asset, score=float((a + round_) % 100),
            state=State.CALM, side=None, updated_ms=now, since_ms=now, forced_share=None,
            data_quality=1.0, features={}, reasons=[], scope=Scope.ASSET,
        ))  # fmt: skip
    return out


@pytest.mark.timeout(120)
async def test_a_thousand_instruments_stay_cheap_to_show() -> None:
    """1,000 instruments rescored every second: the grid shows 40 assets (a search finds the
    others), a redraw stays short, the stream keeps up, the browser logs no error."""
    redis = aioredis.Redis.from_url(REDIS_URL)
    await redis.flushdb()
    settings = Settings(redis_url=REDIS_URL, venues={})
    app = create_app(settings, redis=redis)
    driver = None
    try:
        async with serve(app) as url:
            rounds = 0

            async def detector() -> None:
                nonlocal rounds
                while True:
                    await redis.xadd(keys.SCORES, {"e": encode(_scores(rounds))})
                    rounds += 1
                    await asyncio.sleep(1)

            writing = asyncio.create_task(detector())
            driver = await asyncio.to_thread(_browser, LAPTOP)
            await asyncio.to_thread(driver.get, url + "/")
            rows = "#grid tbody tr"

            def shown() -> int:
                return _count(driver, rows)

            # the 40 highest scores, and the selected asset (the first, A000) wherever it ranks
            await asyncio.to_thread(_wait, lambda: 40 <= shown() <= 41, 30, "40 assets")
            slowest = 0.0
            for _ in range(8):  # redraws while the scores keep coming
                await asyncio.sleep(1)
                ms = await asyncio.to_thread(
                    driver.execute_script, "return document.documentElement.dataset.renderMs"
                )
                slowest = max(slowest, float(ms or 0))
            more = await asyncio.to_thread(_text, driver, "#grid-more")
            search = await asyncio.to_thread(driver.find_element, By.CSS_SELECTOR, "#filter")
            await asyncio.to_thread(search.send_keys, "A05")
            await asyncio.to_thread(_wait, lambda: shown() == 10, 10, "the search's 10 assets")
            found = await asyncio.to_thread(_all_attr, driver, rows, "data-asset")
            cells = await asyncio.to_thread(_count, driver, f"{rows} td.cell[data-state]")
            conn = await asyncio.to_thread(_text, driver, "#conn")
            await asyncio.to_thread(_shot, driver, "page-1000-instruments.png")
            errors = await asyncio.to_thread(_errors, driver)
            writing.cancel()
            await asyncio.to_thread(driver.quit)
            driver = None
    finally:
        if driver is not None:
            await asyncio.to_thread(driver.quit)
        await redis.flushdb()
        await redis.aclose()
    print(f"slowest redraw with 1,000 instruments: {slowest} ms over {rounds} rounds")
    assert "40 of 100 assets" in more
    assert found == [f"A05{d}" for d in range(10)] or sorted(found) == [
        f"A05{d}" for d in range(10)
    ]
    assert cells == 100  # 10 assets x 10 venues
    assert slowest < 100, slowest
    assert conn == "live"
    assert errors == []
