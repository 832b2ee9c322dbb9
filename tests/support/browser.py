"""A report page as headless Chromium sees it (offline, through :mod:`subnetworks.run.browser`): a copy of the page
with a probe script that records console errors and measures the page, read back with ``--dump-dom``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from subnetworks.run.browser import VIEWPORT, chromium, run_chromium, screenshot

__all__ = ["VIEWPORT", "chromium", "probe", "screenshot"]


# Runs first in <head>: keeps console errors and uncaught errors; after the load event it measures the page and
# writes the findings as JSON into <pre id="probe">, which --dump-dom returns.
PROBE = """<script>
window.__errors = [];
const keep = console.error.bind(console);
console.error = (...args) => { window.__errors.push(args.map(String).join(" ")); keep(...args); };
window.addEventListener("error", e => window.__errors.push(String(e.message || e.target.src || e.type)), true);
window.addEventListener("load", () => {
  const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === "auto" || o === "scroll") return true; } return false; };
  const wide = [...document.body.querySelectorAll("*")]
    .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1 && !scrolls(el))
    .map(el => el.tagName + (el.id ? "#" + el.id : ""));
  const images = [...document.images].map(
    img => ({alt: img.getAttribute("alt"), ok: img.complete && img.naturalWidth > 0}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    title: document.title, errors: window.__errors, wide: wide.slice(0, 20), images: images,
    headings: [...document.querySelectorAll("h2")].map(h => h.textContent.replace(/\\u00b6/g, "").trim()),
    width: document.documentElement.scrollWidth,
  });
  document.body.appendChild(out);
});
</script>"""


def probe(page: Path, workdir: Path) -> dict:
    """Copy the page's folder into ``workdir`` (another folder, as a user copying the report would) and return what
    the probe found there."""
    copy = workdir / "copied-report"
    shutil.copytree(page.parent, copy)
    probed = copy / "probed.html"
    html = (copy / page.name).read_text(encoding="utf-8")
    probed.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    done = run_chromium(["--virtual-time-budget=10000", "--dump-dom", probed.as_uri()])
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.DOTALL)
    if not found:
        raise AssertionError(f"the probe never reported (rc {done.returncode}): {done.stderr[-2000:]}")
    return json.loads(_unescape(found.group(1)))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
