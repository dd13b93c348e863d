"""The book builds, and the figure and photo helpers it uses behave.

The build tests (marked ``slow``) run the same command as the README and
``tasks.py book``::

    jupyter-book build . -W -n --keep-going

into a temporary folder, from cold (conftest's ``built_book``, one build per
session), so a stale ``_build/.jupyter_cache`` can never hide a chapter that no
longer runs. Then they check the result: every page of ``_toc.yml`` exists,
every image a chapter shows was written and is not empty, no executed cell
printed a traceback, and the worked examples of the syllabus are visible in the
chapter's outputs. tests/test_book_browser.py reads the same build in Chromium.

The helper tests are fast and run headless (matplotlib's Agg backend).
"""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from book_support import REPO_ROOT, tasks_module, toc_files


class _ImageSources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


# ---------------------------------------------------------------------------
# The build


@pytest.mark.slow
def test_every_toc_file_has_a_page(built_book):
    html = built_book / "html"
    missing = [f for f in toc_files() if not (html / f"{f}.html").is_file()]
    assert not missing, f"no HTML page for {missing} (looked in {html})"
    assert (html / "index.html").is_file(), "the build wrote no index.html"


@pytest.mark.slow
def test_every_image_exists_and_is_not_empty(built_book):
    html = built_book / "html"
    checked = 0
    for name in toc_files():
        page = html / f"{name}.html"
        parser = _ImageSources()
        parser.feed(page.read_text(encoding="utf8"))
        for src in parser.sources:
            assert not src.startswith(("http://", "https://", "//")), (
                f"{page.name} loads a remote image {src}; the book must build and render offline")
            if src.startswith("data:"):
                continue
            target = (page.parent / src.split("#")[0].split("?")[0]).resolve()
            assert target.is_file(), f"{page.name}: <img src={src!r}> points to a missing file {target}"
            assert target.stat().st_size > 0, f"{page.name}: image {target} is empty"
            checked += 1
    chapter_images = _ImageSources()
    chapter_images.feed((html / "book" / "convolution.html").read_text(encoding="utf8"))
    assert len(chapter_images.sources) >= 5, (
        f"the convolution chapter shows {len(chapter_images.sources)} images; expected its figures (>= 5)")
    assert checked >= 5


def _executed_notebooks(built_book: Path) -> list[Path]:
    notebooks = sorted((built_book / "jupyter_execute").rglob("*.ipynb"))
    assert notebooks, f"no executed notebooks under {built_book / 'jupyter_execute'}"
    return notebooks


def _output_texts(notebook: Path):
    nb = json.loads(notebook.read_text(encoding="utf8"))
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                yield index, "error output: " + output.get("ename", "") + ": " + output.get("evalue", "")
            elif output["output_type"] == "stream":
                yield index, "".join(output["text"])
            else:
                for mime, data in output.get("data", {}).items():
                    if mime.startswith("text/"):
                        yield index, "".join(data) if isinstance(data, list) else data


@pytest.mark.slow
def test_no_cell_output_contains_a_traceback(built_book):
    for notebook in _executed_notebooks(built_book):
        for index, text in _output_texts(notebook):
            assert "Traceback" not in text and not text.startswith("error output"), (
                f"{notebook.name}, code cell {index}: output contains an error:\n{text[:2000]}")
    for page in (built_book / "html").rglob("*.html"):
        assert "Traceback (most recent call last)" not in page.read_text(encoding="utf8"), (
            f"{page} shows a traceback")


@pytest.mark.slow
def test_chapter_shows_the_worked_examples(built_book):
    """The syllabus's section-4 numbers appear in the outputs a reader sees."""
    notebook = built_book / "jupyter_execute" / "book" / "convolution.ipynb"
    shown = "\n".join(text for _, text in _output_texts(notebook))
    expected = {
        "1-D convolution": "[-3. -3.  5.  3.  1.]",
        "2-D binary example": "[[4 3 4]\n [2 4 3]\n [2 3 4]]",
        "true convolution": "[[ 45. 110.]\n [ 40.  40.]]",
        "flip equivalence": "correlation with the flipped kernel equals it: True",
        "box filter first row": "[ 0. 10. 20. 30. 30. 30. 20. 10.]",
        "32x32x3 with six 5x5x3 filters": "(1, 6, 28, 28)",
        "3x100x100 with 100 filters": "(100, 96, 96)",
        "the floor agrees with torch": "equal to torch's conv2d: True",
        "homework 3's public test, floored": "[[4. 6.]\n [6. 9.]]",
        "ten 5x5 filters, pad 2": "output (10, 32, 32) | parameters: 760",
        "shrinking": "32 -> 28 -> 24",
        "parameter table": "1,600,000,000",
        "gradient check": "dw agrees with the numerical gradient",
    }
    missing = {what: text for what, text in expected.items() if text not in shown}
    assert not missing, f"the convolution chapter no longer shows: {missing}"


# ---------------------------------------------------------------------------
# coursekit.plots


def _png_bytes(fig) -> int:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.tell()


def test_show_images_one_axis_per_image():
    from matplotlib.figure import Figure

    from coursekit.plots import show_images

    rng = np.random.default_rng(0)
    images = [rng.uniform(0, 255, (8, 8)) for _ in range(4)] + [rng.uniform(0, 255, (8, 8, 3))]
    fig = show_images(images, [f"image {k}" for k in range(5)], ncols=3)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5
    assert [ax.get_title() for ax in fig.axes] == [f"image {k}" for k in range(5)]
    assert _png_bytes(fig) > 0


def test_show_images_rejects_mismatched_titles():
    from coursekit.plots import show_images

    with pytest.raises(ValueError, match="2 titles for 3 images"):
        show_images([np.zeros((4, 4))] * 3, ["a", "b"])
    with pytest.raises(ValueError, match="empty"):
        show_images([])


def test_show_arrays_writes_every_value():
    from coursekit.plots import show_arrays

    fig = show_arrays([np.arange(6).reshape(2, 3), np.full((3, 3), 1.0), np.array([1, 0, -1])],
                      ["a", "box", "row"])
    assert len(fig.axes) == 3
    assert [len(ax.texts) for ax in fig.axes] == [6, 9, 3]
    assert [t.get_text() for t in fig.axes[2].texts] == ["1", "0", "-1"]
    assert _png_bytes(fig) > 0


def test_sliding_window_figure():
    from coursekit.plots import sliding_window_figure

    fig = sliding_window_figure(5, 3, stride=2, padding=1)
    assert len(fig.axes) == 2
    assert fig.axes[1].get_title() == "output 3x3"
    assert _png_bytes(fig) > 0
    # A stride that does not tile is drawn (torch floors); only impossible requests fail.
    assert sliding_window_figure(7, 3, stride=3).axes[1].get_title() == "output 2x2"
    with pytest.raises(ValueError, match="outside the 3x3 output"):
        sliding_window_figure(5, 3, stride=2, padding=1, positions=[(3, 0)])
    with pytest.raises(ValueError, match="larger than the padded input"):
        sliding_window_figure(3, 5)


# ---------------------------------------------------------------------------
# coursekit.images


def test_load_photo_camera_is_gray_float_in_range():
    from coursekit.images import load_photo

    x = load_photo("camera")
    assert x.shape == (512, 512) and x.dtype == np.float64
    assert 0.0 <= x.min() < x.max() <= 255.0


@pytest.mark.parametrize("name", ["astronaut", "china"])
def test_load_photo_colour_and_gray(name):
    from coursekit.images import load_photo

    rgb = load_photo(name, gray=False)
    gray = load_photo(name)
    assert rgb.ndim == 3 and rgb.shape[2] == 3
    assert gray.shape == rgb.shape[:2]
    assert 0.0 <= gray.min() and gray.max() <= 255.0


def test_load_photo_resizes():
    from coursekit.images import load_photo

    assert load_photo("camera", size=64).shape == (64, 64)
    assert load_photo("coffee", gray=False, size=(40, 60)).shape == (40, 60, 3)
    assert load_photo("camera", gray=False).shape == (512, 512, 3)
    with pytest.raises(ValueError, match="size"):
        load_photo("camera", size=0)


def test_every_listed_photo_loads_offline():
    from coursekit.images import available_photos, load_photo

    for name in available_photos():
        assert load_photo(name, size=16).shape == (16, 16), name


def test_load_photo_unknown_name_lists_the_available_ones():
    from coursekit.images import load_photo

    with pytest.raises(ValueError, match=r"unknown photo name 'lena'.*available: .*camera"):
        load_photo("lena")


# ------------------------------------------------------------------ Colab copies
# Colab cannot open MyST .md pages, so each executable page has a paired .ipynb
# (written by `tasks.py book`, committed); the theme's Colab button opens that copy.

def test_every_executable_page_has_an_up_to_date_notebook_copy():
    import jupytext

    tasks = tasks_module()
    pages = tasks.executable_pages()
    assert len(pages) >= 8, f"expected the chapters, found {pages}"
    for page in pages:
        copy = page.with_suffix(".ipynb")
        assert copy.is_file(), f"{copy.relative_to(REPO_ROOT)} is missing: run `python3 tasks.py book` and commit it"
        want = [(c.cell_type, c.source) for c in jupytext.read(page).cells]
        have = [(c.cell_type, c.source) for c in jupytext.read(copy).cells]
        assert have == want, f"{copy.relative_to(REPO_ROOT)} is out of date with {page.name}: run `python3 tasks.py book`"
        install = want[next(i for i, c in enumerate(want) if c[0] == "code")][1]
        assert "google.colab" in install, f"{page.name}: the first code cell must install coursekit on Colab"
        assert f'"coursekit[torch] @ {tasks.install_source()}"' in install, (
            f"{page.name}: the Colab cell does not install from the repository of _config.yml "
            f"({tasks.install_source()}): run `python3 tasks.py book`")


# ------------------------------------------------------------------ code width
#: The widest code line the book's column shows without a scroll bar (112 characters at its font size).
MAX_CODE_LINE = 112


def test_no_code_line_of_a_chapter_is_wider_than_the_column():
    import jupytext

    too_wide = []
    for page in tasks_module().executable_pages():
        for cell in jupytext.read(page).cells:
            if cell.cell_type == "code":
                too_wide += [f"{page.name}: {len(line)} characters: {line.strip()[:60]}..."
                             for line in cell.source.splitlines() if len(line) > MAX_CODE_LINE]
    assert not too_wide, (f"{len(too_wide)} code lines are wider than {MAX_CODE_LINE} characters "
                          f"(they scroll in the book):\n" + "\n".join(too_wide))


# ------------------------------------------------------------------ API reference
#: Modules the reference leaves out, and why: the layers' files are documented through the package
#: ``coursekit.layers``, which re-exports them; the homework's hidden cases belong to the grader.
API_NOT_LISTED = ("coursekit.__main__", "coursekit.layers.", "coursekit.testcases")


def test_api_reference_lists_every_module():
    import pkgutil
    import re

    import coursekit

    documented = set(re.findall(r"^\.\. automodule:: (\S+)", (REPO_ROOT / "book" / "api.md").read_text(), re.M))
    modules = {m.name for m in pkgutil.walk_packages(coursekit.__path__, "coursekit.")}
    public = {m for m in modules if not m.rsplit(".", 1)[-1].startswith("_") and not m.startswith(API_NOT_LISTED)}
    missing = sorted(public - documented)
    assert not missing, f"book/api.md has no automodule entry for {missing}"
    assert not documented - modules - {"coursekit"}, f"book/api.md names modules that do not exist: "\
        f"{sorted(documented - modules - {'coursekit'})}"
