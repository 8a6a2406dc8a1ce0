"""Shared set-up of the browser tests (tests/test_browser.py, tests/test_lab.py).

They drive the system's Chromium (Debian package ``chromium``, installed by ``make test``; another binary
with the environment variable ``CHROMIUM``) through Playwright's Python package, so ``playwright install``,
which downloads a browser, is never needed. Every request to a host other than this machine is aborted and
recorded, so a page that reaches for the internet fails its test instead of hanging or passing by luck.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # reported by sync_playwright() below
    PlaywrightTimeout = TimeoutError


def sync_playwright():
    """Playwright's sync API; fails (never skips) when the package is missing."""
    try:
        from playwright.sync_api import sync_playwright as sp
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[test]' (or `make test`, which installs it)",
                    pytrace=False)
    return sp()


def chromium_path() -> str:
    """The Chromium binary; fails (never skips) with the fix when it is missing."""
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which(CHROMIUM)
    if not path:
        pytest.fail(f"Chromium not found at {CHROMIUM}. `make test` installs it when run as root "
                    "(apt-get install chromium); otherwise run `sudo apt-get install chromium` or point the "
                    "CHROMIUM environment variable at a Chromium or Chrome binary.", pytrace=False)
    return path


def launch(playwright):
    """A headless Chromium from the system (not Playwright's download)."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                      args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])


def block_other_hosts(context, blocked: list[str]) -> None:
    """Abort every request that is not for this machine; append its URL to ``blocked``."""

    def handle(route):
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname not in LOCAL_HOSTS:
            blocked.append(url)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    context.route("**/*", handle)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
