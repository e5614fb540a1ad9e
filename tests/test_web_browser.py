"""The web-service example's page in a real browser: headless Chromium via chromedriver.

The page is opened while no heaps have arrived; heaps are then sent over
loopback UDP, and the page's own JavaScript must update the heap count and
the item table without a reload. Skips, saying why, where Chromium,
chromedriver or selenium are missing (CI installs them: scripts/_env.sh).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import numpy as np
import pytest
from tool_helpers import REPO, env, free_port

import spead2
import spead2.send

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver"
)
WAIT = 20  # seconds, for each browser-side condition


@pytest.fixture
def service() -> Iterator[tuple[int, int]]:
    spead_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "web_service.py"),
         "--spead-port", str(spead_port), "--http-port", str(http_port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", http_port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"web service exited: {proc.communicate()[1]}")
                time.sleep(0.1)
        else:
            pytest.fail("web service did not start listening")
        yield spead_port, http_port
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(WAIT)
        try:
            yield driver
        finally:
            driver.quit()


def send_heaps(port: int, count: int) -> None:
    """Send ``count`` heaps as raw datagrams (each heap fits in one packet)."""
    group = spead2.send.ItemGroup()
    group.add_item(0x1000, "timestamp", "Sample counter", (), format=[("u", 48)])
    group.add_item(0x1001, "spectrum", "Power per channel", (64,), dtype=np.float32)
    group.add_item(0x1002, "label", "Free text", (None,), format=[("c", 8)])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(count):
            group["timestamp"].value = 5000 + i
            group["spectrum"].value = np.full(64, i, np.float32)
            group["label"].value = f"browser heap {i}"
            for packet in spead2.send.PacketGenerator(group.get_heap(), i + 1, 1472):
                sock.sendto(packet, ("127.0.0.1", port))
            time.sleep(0.01)


def test_page_refreshes_itself_in_chromium(service: tuple[int, int], browser) -> None:
    spead_port, http_port = service
    browser.get(f"http://127.0.0.1:{http_port}/")
    assert browser.find_element(By.ID, "heap-count").text == "0"
    send_heaps(spead_port, 3)
    WebDriverWait(browser, WAIT).until(
        lambda b: b.find_element(By.ID, "heap-count").text == "3"
    )
    # The item table is filled by the page's script from /api/items.
    WebDriverWait(browser, WAIT).until(
        lambda b: "browser heap 2" in b.find_element(By.ID, "items").text
    )
    table = browser.find_element(By.ID, "items").text
    assert "timestamp" in table and "5002" in table and "spectrum" in table
