"""Rank pairs of submissions by how much solution code they share (winnowing of normalised tokens).

Each submission goes through the grader's own pre-flight pass
(:func:`autograder.preflight.inspect_submission`), so locked and test cells are the
released ones; only the solution cells and the student's own code cells are compared.
Their code is tokenised with Python's ``tokenize`` and normalised: every identifier
becomes ``V`` (attribute names after a dot stay: they name the library call),
numbers ``N``, strings ``S``; comments and blank lines go. Fingerprints are the
winnowed hashes of ``k``-token windows (Schleimer, Wilkerson and Aiken 2003, the
method of MOSS), so renamed variables, changed comments and reordered functions
change few of them. Fingerprints of the released starter code are removed from
every submission. A pair scores the share of fingerprints the two have in common
(Jaccard index); the HTML report shows the matching lines side by side.
"""
from __future__ import annotations

import hashlib
import html
import io
import itertools
import keyword
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .preflight import inspect_submission
from .layout import Course as CourseFolder
from .files import write_text_atomic

K_TOKENS = 12   # a k-gram: long enough that two honest solutions rarely share one by chance
WINDOW = 6      # winnowing window: any match of K_TOKENS + WINDOW - 1 tokens is always detected
_MAGIC = re.compile(r"^\s*[%!]")


@dataclass(frozen=True)
class Tok:
    text: str
    cell: int
    line: int


@dataclass
class Submission:
    student_id: str
    cells: list          # source of each compared cell
    prints: dict         # fingerprint hash -> [(cell, first line, last line)]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    score: float         # Jaccard index of the fingerprint sets
    shared: int


def compared_cells(nb, released) -> list:
    """Source of the solution cells and the student's own code cells of a repaired notebook."""
    locked = {c.metadata.get("nbgrader", {}).get("grade_id") for c in released.cells
              if c.metadata.get("nbgrader", {}).get("locked")}
    return [c.source for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("grade_id") not in locked]


def normalise(cells: list) -> list:
    """The normalised tokens of ``cells``; a cell that does not tokenise keeps its tokens up to the error."""
    out = []
    for k, src in enumerate(cells):
        src = "\n".join("" if _MAGIC.match(line) else line for line in src.splitlines()) + "\n"
        prev = ""
        try:
            for t in tokenize.generate_tokens(io.StringIO(src).readline):
                text = _norm(t, prev)
                if text:
                    out.append(Tok(text, k, t.start[0]))
                    prev = t.string
        except (tokenize.TokenError, IndentationError, SyntaxError):
            continue
    return out


def _norm(t, prev: str) -> str:
    if t.type == tokenize.NAME:
        return t.string if keyword.iskeyword(t.string) or prev == "." else "V"
    if t.type == tokenize.NUMBER:
        return "N"
    if t.type == tokenize.STRING or t.type in _FSTRING_TYPES:
        return "S"
    if t.type == tokenize.OP:
        return t.string
    return ""  # comments, newlines, indentation


_FSTRING_TYPES = {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
                  if hasattr(tokenize, n)}


def fingerprints(toks: list, k: int = K_TOKENS, window: int = WINDOW) -> dict:
    """Winnowed hashes of the ``k``-grams of ``toks``: ``{hash: [(cell, first line, last line)]}``."""
    grams = []
    for i in range(len(toks) - k + 1):
        text = " ".join(t.text for t in toks[i:i + k])
        h = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
        grams.append((h, i))
    chosen = {}
    for j in range(max(0, len(grams) - window + 1)):
        h, i = min(grams[j:j + window], key=lambda g: (g[0], -g[1]))
        chosen[i] = h
    if grams and len(grams) < window:
        h, i = min(grams)
        chosen[i] = h
    out: dict = {}
    for i, h in chosen.items():
        first, last = toks[i], toks[i + k - 1]
        span = (first.cell, first.line, last.line if last.cell == first.cell else first.line)
        out.setdefault(h, []).append(span)
    return out


def load_class(hw: str, course_dir: Path) -> tuple:
    """``(submissions, starter fingerprints)`` of everyone collected for ``hw``."""
    course_dir = Path(course_dir)
    released = nbformat.read(CourseFolder.at(course_dir).released(hw), as_version=4)
    starter = fingerprints(normalise(compared_cells(released, released)))
    subs = []
    base = CourseFolder.at(course_dir).collected(hw)
    for folder in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        pre = inspect_submission(hw, folder, released)
        if pre.notebook is None:
            continue
        cells = compared_cells(pre.notebook, released)
        prints = {h: v for h, v in fingerprints(normalise(cells)).items() if h not in starter}
        subs.append(Submission(folder.name, cells, prints))
    return subs, starter


def rank_pairs(subs: list) -> list:
    """Every pair of submissions with at least one shared fingerprint, the most similar first."""
    pairs = []
    for a, b in itertools.combinations(subs, 2):
        shared = len(a.prints.keys() & b.prints.keys())
        union = len(a.prints.keys() | b.prints.keys())
        if shared:
            pairs.append(Pair(a.student_id, b.student_id, shared / union, shared))
    return sorted(pairs, key=lambda p: (-p.score, p.a, p.b))


def similarity(hw: str, course_dir: Path, out: Path | None = None, *, top: int = 20) -> tuple:
    """Rank the pairs of ``hw`` and write the HTML report; return ``(pairs, report path)``."""
    course_dir = Path(course_dir)
    subs, _ = load_class(hw, course_dir)
    pairs = rank_pairs(subs)
    out = Path(out or CourseFolder.at(course_dir).reports(hw) / "similarity.html")
    by_id = {s.student_id: s for s in subs}
    write_text_atomic(out, report_html(hw, pairs[:top], by_id, len(subs)))
    return pairs, out


def _marked(sub: Submission, shared: set) -> str:
    lines = {(c, ln) for h in shared for c, first, last in sub.prints[h] for ln in range(first, last + 1)}
    parts = []
    for k, src in enumerate(sub.cells):
        rows = [f"<mark>{html.escape(line)}</mark>" if (k, n) in lines else html.escape(line)
                for n, line in enumerate(src.splitlines(), start=1)]
        parts.append("\n".join(rows))
    return "<pre>" + "\n<hr>".join(parts) + "</pre>"


def report_html(hw: str, pairs: list, by_id: dict, n: int) -> str:
    rows = "".join(f"<tr><td><a href='#p{i}'>{html.escape(p.a)} / {html.escape(p.b)}</a></td>"
                   f"<td>{100 * p.score:.0f}%</td><td>{p.shared}</td></tr>" for i, p in enumerate(pairs))
    blocks = []
    for i, p in enumerate(pairs):
        a, b = by_id[p.a], by_id[p.b]
        shared = a.prints.keys() & b.prints.keys()
        blocks.append(f"<h2 id='p{i}'>{html.escape(p.a)} and {html.escape(p.b)}: {100 * p.score:.0f}%</h2>"
                      f"<table class='side'><tr><th>{html.escape(p.a)}</th><th>{html.escape(p.b)}</th></tr>"
                      f"<tr><td>{_marked(a, shared)}</td><td>{_marked(b, shared)}</td></tr></table>")
    style = ("body{font-family:sans-serif} .side td{vertical-align:top;width:50%} pre{font-size:12px;"
             "white-space:pre-wrap} mark{background:#ffd54f}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(hw)} similarity</title>"
            f"<style>{style}</style></head><body><h1>{html.escape(hw)}: shared solution code</h1>"
            f"<p>{n} submissions; the {len(pairs)} most similar pairs. Highlighted lines are in windows of "
            f"{K_TOKENS} normalised tokens that both submissions contain (starter code and tests left out). "
            "A high share is a reason to look, not a verdict.</p>"
            f"<table><tr><th>pair</th><th>shared</th><th>fingerprints</th></tr>{rows}</table>"
            + "".join(blocks) + "</body></html>")
