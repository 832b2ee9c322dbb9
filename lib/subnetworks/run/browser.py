"""Headless Chromium (Debian's ``chromium``), offline: the report's picture for the README, and the page as the
browser test reads it. Every host resolves nowhere and the proxy is a closed port, so whatever a page would fetch
fails, as it would for a reader without a network."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

VIEWPORT = (1400, 900)  # the width the report is laid out for
OFFLINE = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(args: list[str], height: int = VIEWPORT[1], timeout: int = 120) -> subprocess.CompletedProcess:
    """Chromium headless and offline at the viewport's width and ``height``, with ``args`` (a URL among them)."""
    binary = chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH: install Debian's chromium package")
    base = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *OFFLINE]
    size = f"--window-size={VIEWPORT[0]},{height}"
    return subprocess.run([*base, size, *args], capture_output=True, text=True, timeout=timeout, check=False)


def screenshot(page: Path, png: Path, height: int = 2400) -> Path:
    """The top ``height`` pixels of ``page`` at the viewport's width, as ``png``."""
    png.parent.mkdir(parents=True, exist_ok=True)
    run_chromium([f"--screenshot={png}", page.resolve().as_uri()], height)
    return png
