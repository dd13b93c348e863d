"""Sphinx extension: the photo of the kernel editor, written into the built book.

kernel_editor.js filters a grayscale photo in the reader's browser. The photo is
coursekit's ``camera`` at :data:`SIZE` x :data:`SIZE`, rounded to bytes, and
written at build time to ``_static/photo_camera.js`` as base64, so the page
needs no network and the repository holds no image blob.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

from coursekit.images import load_photo

#: Side of the photo the kernel editor filters, in pixels.
SIZE = 128
PHOTOS = ("camera",)


def photo_bytes(name: str, size: int = SIZE) -> np.ndarray:
    """The photo as the browser gets it: ``(size, size)`` uint8."""
    return np.clip(np.round(load_photo(name, size=size)), 0, 255).astype(np.uint8)


def photo_script(name: str, size: int = SIZE) -> str:
    """JavaScript that registers the photo in ``window.COURSE_PHOTOS``."""
    pixels = base64.b64encode(photo_bytes(name, size).tobytes()).decode("ascii")
    return ("window.COURSE_PHOTOS = window.COURSE_PHOTOS || {};\n"
            f'window.COURSE_PHOTOS["{name}"] = {{"size": {size}, "pixels": "{pixels}"}};\n')


def write_photos(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        (static / f"photo_{name}.js").write_text(photo_script(name), encoding="ascii")


def setup(app):
    app.connect("build-finished", write_photos)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
