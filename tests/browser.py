"""Headless Chromium through selenium and Debian's chromedriver, for the HTML report tests."""
from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage")


def find_browser() -> tuple[str, str] | None:
    """(chromium, chromedriver) paths, or None when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@contextmanager
def chromium(width: int = 1280, height: int = 900):
    """A selenium WebDriver on headless Chromium with a fresh profile; console logs kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    found = find_browser()
    if found is None:
        raise RuntimeError("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    binary, driver_path = found
    with tempfile.TemporaryDirectory(prefix="tagger-chromium-") as profile:
        opts = webdriver.ChromeOptions()
        opts.binary_location = binary
        for flag in CHROMIUM_FLAGS:
            opts.add_argument(flag)
        opts.add_argument(f"--user-data-dir={profile}")
        opts.add_argument(f"--window-size={width},{height}")
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
        try:
            yield driver
        finally:
            driver.quit()


def console_problems(driver) -> list[str]:
    """Console messages at warning level or worse (errors, failed loads, exceptions)."""
    return [f"{m['level']}: {m['message']}" for m in driver.get_log("browser") if m["level"] in ("SEVERE", "WARNING")]


def file_url(path: Path) -> str:
    return Path(path).resolve().as_uri()
