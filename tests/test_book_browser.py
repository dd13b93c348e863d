"""The built book, read in headless Chromium with the network blocked, as a student would.

The book (conftest's ``built_book``: one cold build per session) is served from
127.0.0.1; Chromium resolves no other host, and every request it makes is
recorded, so a page that reaches for a CDN fails here. Each chapter must show
its maths typeset by the bundled MathJax (no raw ``\\(`` or ``$$`` left), load every
image, keep every code line, output and table inside its column (or inside a
box that scrolls by design), and show no traceback. The interactive figures are
driven like a reader drives them (typing into their fields, clicking their
buttons) and the numbers they show are compared with ``coursekit``: output
sizes with ``arith.conv_output_size``, receptive fields with
``arith.receptive_field``, the filtered photo with ``layers.correlate2d``.

Chromium is driven through its DevTools protocol over ``--remote-debugging-pipe``
(file descriptors 3 and 4), with the standard library only.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from book_support import toc_files
from coursekit import arith
from coursekit.filters import LAPLACIAN_8, VERTICAL_EDGE, box_kernel, sharpen_kernel
from coursekit.images import load_photo
from coursekit.layers import correlate2d

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)"),
]

#: Pages that are chapters: the numbered part of _toc.yml.
CHAPTERS = [f for f in toc_files() if f.startswith("book/") and "/homework/" not in f and f not in ("book/intro", "book/api", "book/references")]
PAGES = toc_files()
VIEWPORT = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}


class DevTools:
    """A headless Chromium and one page of it, spoken to in DevTools protocol messages."""

    def __init__(self, profile: Path):
        to_browser, self._writer = os.pipe()
        self._reader, from_browser = os.pipe()

        def on_fds_3_and_4():  # runs in the child, before exec
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # the network, blocked
                 f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen([CHROMIUM, *flags], preexec_fn=on_fds_3_and_4, close_fds=False,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._next_id, self.events, self.session = b"", 0, [], None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", **VIEWPORT)

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            if not select.select([self._reader], [], [], 120)[0]:
                raise TimeoutError("chromium sent nothing on the DevTools pipe for 120 s")
            chunk = os.read(self._reader, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium closed the DevTools pipe (exit code {self.proc.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.events.clear()
        self.call("Page.navigate", url=url)
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._message())

    def js(self, expression: str):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True, timeout=60000)
        if "exceptionDetails" in result:
            raise AssertionError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requested(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        os.close(self._writer)
        os.close(self._reader)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def site(built_book):
    """The built HTML on http://127.0.0.1:<free port>."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(built_book / "html")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tools = DevTools(tmp_path_factory.mktemp("chromium-profile"))
    yield tools
    tools.close()


def _open(browser, site, page: str) -> None:
    browser.open(f"{site}/{page}.html")
    # Typesetting is asynchronous: wait for MathJax where the page loads it.
    browser.js("window.MathJax && MathJax.startup && MathJax.startup.promise ? MathJax.startup.promise.then(() => true) : true")
    browser.js("Promise.all([...document.images].map(i => i.complete ? 1 : new Promise(r => { i.onload = i.onerror = r; })))")


# What a page shows, measured in the browser. The column is the article; an
# element "overflows" when its content is wider than its box and the box does
# not scroll, or when the box itself reaches past the column.
PAGE_REPORT = r"""(() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const right = article.getBoundingClientRect().right + 1;
  const describe = el => (el.className || el.tagName) + ": " + (el.innerText || "").trim().slice(0, 80);
  const scrolls = el => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  const overflowing = [];
  article.querySelectorAll("pre, table, img, div.math, mjx-container[display='true'], div.output, div.conv-explorer, div.kernel-editor, div.rf-builder").forEach(el => {
    if (el.closest("details:not([open])") || el.offsetParent === null) return;
    const past = el.getBoundingClientRect().right > right;
    const hidden = el.scrollWidth > el.clientWidth + 1 && !scrolls(el) && el.tagName !== "IMG" && el.tagName !== "TABLE";
    const boxed = el.tagName === "TABLE" && el.closest("div.output, div.cell_output, div.table-wrapper, div.pst-scrollable-table-container");
    if (past && !(boxed && scrolls(boxed.closest("div.output") || boxed))) overflowing.push("past the column: " + describe(el));
    else if (hidden) overflowing.push("content cut: " + describe(el));
  });
  // Neighbouring numbers in a table need space between them ("117,600" "5", not "117,6005").
  const cramped = [...article.querySelectorAll("div.cell_output table td, div.cell_output table th")].filter(c => {
    const st = getComputedStyle(c);
    return parseFloat(st.paddingLeft) + parseFloat(st.paddingRight) < 8;
  }).map(describe);
  const outputsCut = [...article.querySelectorAll("div.cell_output pre")].filter(p => p.scrollWidth > p.clientWidth + 1).map(describe);
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  const rawTex = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest("pre, code, script, style, mjx-container, mjx-assistive-mml, textarea")) continue;
    // LaTeX left untypeset, or a cross-reference label printed raw, e.g. "(eq-centred-difference)".
    const m = n.textContent.match(/\\\(|\\\)|\\\[|\\\]|\$\$|\\(frac|begin|mathbb|sum|text)\b|\((eq|fig|sec|chap|tab)-[\w-]+\)/);
    if (m) rawTex.push(n.textContent.trim().slice(0, 80));
  }
  return {
    mathSpans: article.querySelectorAll("span.math, div.math").length,
    typeset: article.querySelectorAll("mjx-container").length,
    mathErrors: article.querySelectorAll("mjx-merror").length,
    images: [...article.querySelectorAll("img")].map(i => ({src: i.currentSrc || i.src, width: i.naturalWidth})),
    overflowing, outputsCut, rawTex, cramped,
    tracebacks: article.innerText.includes("Traceback (most recent call last)") + article.querySelectorAll("div.output.traceback, div.output.error").length,
    title: document.title,
    links: [...document.querySelectorAll("a[href]")].map(a => a.getAttribute("href")),
  };
})()"""


@pytest.mark.parametrize("page", PAGES)
def test_page_reads_well_offline(browser, site, page):
    _open(browser, site, page)
    report = browser.js(PAGE_REPORT)
    external = [u for u in browser.requested() if not u.startswith((site, "data:", "blob:", "about:"))]
    assert not external, f"{page}: the page requested {external[:5]}; the book must render with no network"
    assert report["title"].strip(), f"{page}: no <title>"
    assert report["typeset"] >= report["mathSpans"], (
        f"{page}: {report['mathSpans']} maths elements but only {report['typeset']} typeset by MathJax")
    assert report["mathErrors"] == 0, f"{page}: MathJax reports {report['mathErrors']} errors in the LaTeX"
    assert not report["rawTex"], f"{page}: raw LaTeX or raw reference labels shown to the reader: {report['rawTex'][:5]}"
    broken = [i["src"] for i in report["images"] if i["width"] == 0]
    assert not broken, f"{page}: images that did not load: {broken}"
    assert not report["cramped"], f"{page}: table cells without padding, their numbers run together: {report['cramped'][:5]}"
    assert not report["outputsCut"], f"{page}: cell outputs cut at the column edge: {report['outputsCut'][:5]}"
    assert not report["overflowing"], f"{page}: content wider than its column: {report['overflowing'][:5]}"
    assert not report["tracebacks"], f"{page}: shows a traceback"
    for other in ("book/references", "book/homework/index", "book/convolution"):
        if page != other:
            assert any(h.split("#")[0].endswith(other.split("/")[-1] + ".html") for h in report["links"]), (
                f"{page}: navigation has no link to {other}")


def test_every_chapter_has_maths_and_figures(browser, site):
    """The checks above are not vacuous: every chapter typesets maths and shows figures."""
    for page in CHAPTERS:
        _open(browser, site, page)
        report = browser.js(PAGE_REPORT)
        assert report["typeset"] > 0, f"{page}: no maths typeset"
        assert len(report["images"]) >= 1, f"{page}: no figures"


def test_figures_are_high_resolution(browser, site):
    """Figures carry at least twice the pixels they are shown with (sharp on any screen)."""
    _open(browser, site, "book/convolution")
    sizes = browser.js("[...document.querySelectorAll('div.cell_output img')].map(i => [i.naturalWidth, i.width, i.src])")
    assert len(sizes) >= 5, f"expected the convolution chapter's figures, found {sizes}"
    low = [s[:2] for s in sizes if s[0] < 1.9 * s[1] and not s[2].endswith(".svg")]  # SVG is sharp at any size
    assert not low, (f"figures with fewer than 2 pixels per displayed pixel (natural, shown width): {low}; "
                     "tasks.py sets the retina format in .venv/etc/ipython/ipython_kernel_config.py")


# ------------------------------------------------------------------ the interactive figures

def _set(browser, selector: str, value) -> None:
    """Type a value into a field, as a reader does: set it, fire an input event."""
    browser.js(f"(() => {{ const f = document.querySelector({json.dumps(selector)}); f.value = {json.dumps(str(value))};"
               " f.dispatchEvent(new Event('input', {bubbles: true})); })()")


def _data(browser, selector: str) -> dict:
    return browser.js(f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
                      " return Object.assign({text: el.innerText}, el.dataset); })()")


@pytest.mark.parametrize("h, k, s, p", [(5, 3, 2, 1), (7, 3, 3, 0), (7, 3, 1, 0), (4, 3, 2, 1), (8, 5, 3, 2), (10, 4, 4, 0)])
def test_convolution_explorer_output_size(browser, site, h, k, s, p):
    _open(browser, site, "book/convolution")
    for name, value in (("input", h), ("kernel", k), ("stride", s), ("padding", p)):
        _set(browser, f"div.conv-explorer input[data-param={name}]", value)
    shown = _data(browser, "div.conv-explorer")
    size = arith.conv_output_size(h, k, stride=s, padding=p, strict=False)
    leftover = (h + 2 * p - k) % s
    assert int(shown["outputSize"]) == size, f"H={h} K={k} S={s} P={p}: explorer says {shown['outputSize']}, arith {size}"
    assert f"Output {size}\u00d7{size}" in shown["text"], shown["text"]
    assert int(shown["unvisited"]) == leftover
    assert ("never visited" in shown["text"]) == bool(leftover), shown["text"]
    # The red cells: rows and columns of the padded input beyond the last window.
    padded, covered = h + 2 * p, (size - 1) * s + k
    red = browser.js("document.querySelectorAll('div.conv-explorer rect.ce-never').length")
    assert red == padded**2 - covered**2
    assert browser.js("document.querySelectorAll('div.conv-explorer svg.ce-output rect').length") == size * size
    # "next window" steps through all size*size windows and wraps around.
    first = browser.js("document.querySelector('div.conv-explorer rect.ce-window').getAttribute('x')")
    for _ in range(size * size):
        browser.js("document.querySelector('div.conv-explorer button.ce-next').click()")
    assert browser.js("document.querySelector('div.conv-explorer rect.ce-window').getAttribute('x')") == first


def test_convolution_explorer_refuses_a_kernel_larger_than_the_padded_input(browser, site):
    _open(browser, site, "book/convolution")
    for name, value in (("input", 3), ("kernel", 7), ("stride", 1), ("padding", 1)):
        _set(browser, f"div.conv-explorer input[data-param={name}]", value)
    with pytest.raises(ValueError, match="does not fit"):
        arith.conv_output_size(3, 7, padding=1, strict=False)
    shown = _data(browser, "div.conv-explorer")
    assert shown["outputSize"] == "" and "does not fit" in shown["text"], shown


def _receptive_field(spec: str, size: int) -> tuple[int, int]:
    """(receptive field, output size) of a builder spec, by coursekit.arith."""
    windows = []
    for layer in spec.split(","):
        kind, kernel, *opts = re.findall(r"[a-z]+|\d+", layer.strip())
        kernel = int(kernel)
        options = dict(zip(opts[0::2], map(int, opts[1::2])))
        stride, padding = options.get("s", 1 if kind == "conv" else kernel), options.get("p", 0)
        windows.append((kernel, stride))
        size = arith.conv_output_size(size, kernel, stride=stride, padding=padding, strict=False)
    return arith.receptive_field(windows), size


@pytest.mark.parametrize("spec, size", [
    ("conv5, pool2, conv5, pool2", 32),                       # LeNet-5: 16, the chapter 5 exercise
    ("conv3 p1, conv3 p1, conv3 p1", 32),                     # 2n + 1 = 7
    ("conv11 s4, pool3 s2, conv5 p2, pool3 s2, conv3 p1, conv3 p1, conv3 p1, pool3 s2", 227),  # AlexNet: 195
    ("conv7 s2 p3, pool3 s2 p1, conv3 p1, conv3 p1", 224),
    ("conv3 s3, conv2", 10),
])
def test_receptive_field_builder(browser, site, spec, size):
    _open(browser, site, "book/pooling")
    _set(browser, "div.rf-builder input.rf-input", size)
    _set(browser, "div.rf-builder input.rf-spec", spec)
    shown = _data(browser, "div.rf-builder")
    field, out = _receptive_field(spec, size)
    assert (int(shown["field"]), int(shown["outputSize"])) == (field, out), f"{spec} on {size}: {shown}"
    assert f"Receptive field {field}\u00d7{field}" in shown["text"]
    rows = browser.js("[...document.querySelectorAll('div.rf-builder table.rf-table tr')].slice(2).map(r => +r.cells[6].innerText)")
    layers = [s.strip() for s in spec.split(",")]
    assert rows == [_receptive_field(", ".join(layers[: i + 1]), size)[0] for i in range(len(layers))]


def test_receptive_field_builder_names_a_bad_layer(browser, site):
    _open(browser, site, "book/pooling")
    _set(browser, "div.rf-builder input.rf-spec", "conv5, dense10")
    shown = _data(browser, "div.rf-builder")
    assert shown["field"] == "" and "dense10" in shown["text"], shown


def _editor_photo(built_book: Path) -> np.ndarray:
    """The photo as the page has it, decoded from _static/photo_camera.js."""
    script = (built_book / "html" / "_static" / "photo_camera.js").read_text()
    size = int(re.search(r'"size": (\d+)', script).group(1))
    pixels = base64.b64decode(re.search(r'"pixels": "([^"]+)"', script).group(1))
    return np.frombuffer(pixels, dtype=np.uint8).reshape(size, size).astype(np.float64)


def test_kernel_editor_photo_is_the_camera(built_book):
    photo = _editor_photo(built_book)
    assert np.abs(photo - load_photo("camera", size=photo.shape[0])).max() <= 0.5


@pytest.mark.parametrize("preset, kernel", [
    ("identity", np.eye(3)[1][:, None] * np.eye(3)[1]), ("box blur", box_kernel(3)), ("sharpen", sharpen_kernel(3)),
    ("vertical edge", VERTICAL_EDGE), ("horizontal edge", VERTICAL_EDGE.T), ("laplacian", LAPLACIAN_8),
])
def test_kernel_editor_presets(browser, site, built_book, preset, kernel):
    _open(browser, site, "book/images_and_features")
    browser.js(f"document.querySelector('div.kernel-editor button[data-preset=\"{preset}\"]').click()")
    _check_editor(browser, built_book, kernel)


def test_kernel_editor_typed_kernel(browser, site, built_book):
    _open(browser, site, "book/images_and_features")
    kernel = np.array([[0.0, 2.0, 0.0], [-1.0, 0.5, 0.0], [0.0, 0.0, -3.0]])
    for i, w in enumerate(kernel.ravel()):
        _set(browser, f"div.kernel-editor .ke-kernel input:nth-child({i + 1})", w)
    _check_editor(browser, built_book, kernel)


def _check_editor(browser, built_book, kernel) -> None:
    shown = _data(browser, "div.kernel-editor")
    expected = correlate2d(_editor_photo(built_book), kernel, mode="same")
    centre = expected.shape[0] // 2
    got = np.array([float(shown["min"]), float(shown["max"]), float(shown["probe"])])
    want = np.array([expected.min(), expected.max(), expected[centre, centre]])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=f"kernel\n{kernel}")
    assert f"{want[2]:.2f}" in shown["text"].replace("-0.00", "0.00") or abs(want[2]) < 0.005, shown["text"]
    # The output canvas is painted: not one flat colour unless the output is flat.
    spread = browser.js("(() => { const c = document.querySelectorAll('div.kernel-editor canvas')[1];"
                        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                        " let lo = 255, hi = 0; for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }"
                        " return hi - lo; })()")
    assert spread == (255 if want[1] > want[0] else 0)


# ------------------------------------------------------------------ launch buttons

def test_launch_buttons_follow_the_configured_repository(browser, site):
    """Chapters and homework pages open their notebook on Colab, in the repository of _config.yml."""
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "_config.yml").read_text())
    repo = config["repository"]["url"].split("github.com/")[1].rstrip("/")
    branch = config["repository"].get("branch", "main")
    cases = {"book/convolution": "book/convolution.ipynb", "book/homework/hw3_conv": "book/homework/notebooks/hw3_conv.ipynb"}
    for page, notebook in cases.items():
        _open(browser, site, page)
        links = browser.js("[...document.querySelectorAll('a[href]')].map(a => a.href)")
        colab = f"https://colab.research.google.com/github/{repo}/blob/{branch}/{notebook}"
        assert colab in links, f"{page}: no Colab button opening {colab}"
        assert f"https://github.com/{repo}" in links, f"{page}: no repository button for {repo}"
