"""Monitor fixtures: the shared Mosquitto broker, and headless Chromium through chromedriver.

Chromium is Debian's ``chromium`` driven by its own ``chromium-driver`` with
Selenium: the driver always matches the browser's version, and nothing is
downloaded (Playwright would want its own browser build).
"""

from __future__ import annotations

import shutil
import tempfile
from typing import TYPE_CHECKING

import pytest

from tests.conftest import missing_part
from tests.devices.agent.conftest import broker

if TYPE_CHECKING:
    from collections.abc import Iterator

    from selenium.webdriver.remote.webdriver import WebDriver

__all__ = ["broker", "chromium"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


@pytest.fixture
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium with a fresh profile (fails under BRANCHD_REQUIRE_PARTS if absent)."""
    if shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None:
        missing_part("headless Chromium: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver  # noqa: PLC0415 - only where a browser is wanted
        from selenium.webdriver.chrome.service import Service  # noqa: PLC0415
    except ImportError:
        missing_part("selenium: pip install selenium")
    profile = tempfile.mkdtemp(prefix="branchd-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
