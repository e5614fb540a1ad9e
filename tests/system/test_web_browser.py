"""The live page in a real browser: headless Chromium via chromedriver, looked at as pixels.

Each server that serves the page (the aiohttp example, the FastAPI example
and ``spead2_recv --http-port``) runs as a subprocess while a thread sends it
heaps over loopback UDP: a spectrum whose peak moves, a counter and a text.
The test then takes screenshots of the page's canvases and asserts that the
spectrum is drawn (pixels of the line's colour) and that the plots update by
themselves (pixels change between two screenshots), not only that the page
loads. A screenshot of the whole page is left in the test's temporary
directory. Skips, saying why, where Chromium, chromedriver, selenium or
Pillow are missing (CI installs them: scripts/_env.sh).
"""

from __future__ import annotations

import io
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import spead2
import spead2.send
from tests.helpers.tools import REPO, env, free_port, tool_command
from tests.helpers.waiting import wait_for

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
Image = pytest.importorskip("PIL.Image", reason="needs Pillow")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver"
)
WAIT = 20  # seconds, for each browser-side condition
SEND_LIMIT = 60.0  # seconds the sender runs at most
LINE_RGB = (0x4C, 0xC2, 0xFF)  # the colour the page draws lines with


def server_command(kind: str, spead_port: int, http_port: int) -> list[str]:
    if kind == "spead2_recv":
        return tool_command("recv", "--http-port", str(http_port), f"127.0.0.1:{spead_port}")
    if kind == "fastapi":
        pytest.importorskip("fastapi", reason="the FastAPI example needs fastapi")
        pytest.importorskip("uvicorn", reason="the FastAPI example needs uvicorn")
    script = {"aiohttp": "web_service.py", "fastapi": "fastapi_service.py"}[kind]
    return [sys.executable, str(REPO / "examples" / script),
            "--spead-port", str(spead_port), "--http-port", str(http_port)]


@pytest.fixture(params=["aiohttp", "fastapi", "spead2_recv"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int, int]]:
    spead_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        server_command(request.param, spead_port, http_port),
        stdout=subprocess.DEVNULL, stderr=log, text=True, env=env(), cwd=REPO,
    )
    try:

        def state() -> str:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.5).close()
                return "listening"
            except OSError:
                return "exited" if proc.poll() is not None else ""

        if wait_for(state, f"{request.param} to listen", timeout=30) == "exited":
            log.seek(0)
            pytest.fail(f"{request.param} exited: {log.read()}")
        yield request.param, spead_port, http_port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1400,1400", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(WAIT)
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture
def sender(service: tuple[str, int, int]) -> Iterator[None]:
    """Heaps to the service, 20 a second, until the test ends (or ``SEND_LIMIT``)."""
    stop = threading.Event()
    thread = threading.Thread(target=send_heaps, args=(service[1], stop), daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)


def send_heaps(port: int, stop: threading.Event) -> None:
    """A spectrum with a peak that moves a channel per heap (each heap is one packet)."""
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "timestamp", "Sample counter", (), format=[("u", 48)])
    group.add_item(0x1001, "spectrum", "Power per channel", (256,), dtype=np.float32)
    group.add_item(0x1002, "label", "Free text", (None,), format=[("c", 8)])
    channels = np.arange(256)
    deadline = time.monotonic() + SEND_LIMIT
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        i = 0
        while not stop.is_set() and time.monotonic() < deadline:
            group["timestamp"].value = 5000 + i
            peak = 30 + (i * 3) % 200
            group["spectrum"].value = (1 + 10 * np.exp(-0.5 * ((channels - peak) / 4) ** 2)).astype(
                np.float32)
            group["label"].value = f"browser heap {i}"
            descriptors = "all" if i % 10 == 0 else "stale"
            for packet in spead2.send.PacketGenerator(group.get_heap(descriptors=descriptors),
                                                      i + 1, 9000):
                sock.sendto(packet, ("127.0.0.1", port))
            i += 1
            stop.wait(0.05)


def pixels(browser, selector: str) -> np.ndarray:
    """A screenshot of one element, as an RGB array."""
    png = browser.find_element(By.CSS_SELECTOR, selector).screenshot_as_png
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def line_pixels(image: np.ndarray) -> int:
    """How many pixels are (nearly) the colour lines are drawn in."""
    return int((np.abs(image - np.array(LINE_RGB)).max(axis=2) < 40).sum())


def wait_until(browser, condition: Callable[[], bool], what: str) -> None:
    try:
        WebDriverWait(browser, WAIT, poll_frequency=0.2).until(lambda _: condition())
    except Exception as exc:  # selenium's TimeoutException
        raise AssertionError(f"not seen within {WAIT} s: {what}") from exc


def changes(browser, selector: str, what: str) -> None:
    """The element's pixels change by themselves (a new frame is drawn)."""
    before = pixels(browser, selector)
    wait_until(
        browser,
        lambda: (np.abs(pixels(browser, selector) - before).max(axis=2) > 30).sum() > 50,
        f"{what} redrawn with new data",
    )


def test_live_page_draws_and_updates_its_plots(
    service: tuple[str, int, int], sender: None, browser, tmp_path: Path
) -> None:
    kind, _, http_port = service
    browser.get(f"http://127.0.0.1:{http_port}/")
    state = browser.find_element(By.ID, "state")
    wait_until(browser, lambda: state.get_attribute("data-state") == "receiving", "receiving")
    spectrum = '.card[data-item="spectrum"] canvas[data-plot="spectrum"]'
    waterfall = '.card[data-item="spectrum"] canvas[data-plot="waterfall"]'
    wait_until(browser, lambda: bool(browser.find_elements(By.CSS_SELECTOR, spectrum)),
               "a card for the spectrum")
    # Drawn: the spectrum's line is there in its colour, and so is the rate's.
    wait_until(browser, lambda: line_pixels(pixels(browser, spectrum)) > 150, "the spectrum's line")
    wait_until(browser, lambda: line_pixels(pixels(browser, "#rate-chart")) > 30, "the rate's line")
    # Updated by what the server pushes, without a reload.
    changes(browser, spectrum, "the spectrum")
    changes(browser, waterfall, "the waterfall")
    heaps = int(browser.find_element(By.ID, "heap-count").text.replace(",", ""))
    wait_until(browser, lambda: int(browser.find_element(By.ID, "heap-count").text.replace(
        ",", "")) > heaps, "the heap count going up")
    assert "browser heap" in browser.find_element(By.CSS_SELECTOR, '.card[data-item="label"]').text
    assert browser.find_element(By.ID, "rate").text.endswith("b/s")
    # The rendered page, for people to look at.
    browser.save_screenshot(str(tmp_path / f"live-{kind}.png"))
    assert not [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
