"""Pre-flight: find a student's notebook, repair what can be repaired, flag tampering.

A submission is rebuilt on the released notebook's skeleton:

* every *locked* cell (instructions, setup, tests) is taken from the released
  notebook, whatever the student did to it -- edited, retyped, re-tagged,
  duplicated or deleted (nbgrader restores the hidden tests at autograde time);
* every *solution* cell keeps the student's source, with the released cell
  type and metadata (so ``points`` or ``grade`` cannot be raised, and a
  solution turned into markdown runs again as code); the first copy of a
  duplicated cell wins (as nbgrader's ``DeduplicateIds``), a deleted one is
  restored as the released stub;
* the student's own extra cells stay where they were, stripped of any nbgrader
  metadata (a self-made graded cell earns nothing).

Accidents (a renamed file such as ``hw3_conv (1).ipynb``, duplicated or deleted
cells) are repaired silently and listed in ``notes``. Changes that can only be
attempts to game the grade (editing a locked or test cell, changing a graded
cell's type or metadata, self-made graded cells, code that imports the
reference or patches numpy or the checks) are repaired too and listed in
``tampering``: the notebook is graded on the restored version and gets the
status ``tampered`` so a human looks at it. What cannot be repaired (no
notebook, unreadable JSON, a notebook of another assignment) is quarantined
with a reason.
"""
from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook

from .files import is_plain_file

MAX_NOTEBOOK_BYTES = 20 * 1024 ** 2
_ID = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")

_COPY_SUFFIXES = (re.compile(r"[\s_-]*\(\d+\)$"),          # "hw3_conv (1)", browser downloads
                  re.compile(r"[\s_-]+copy(?:[\s_-]*\d+)?$"),  # "hw3_conv-Copy1", "hw3_conv copy 2"
                  re.compile(r"^copy[\s_-]+of[\s_-]+"),        # "Copy of hw3_conv"
                  re.compile(r"[\s_-]+\d+$"),                   # "hw3_conv-2"
                  re.compile(r"[\s_-]+(?:final|submission|submit|v\d+)$"))

GAMING_PATTERNS = (
    (re.compile(r"coursekit\s*\.\s*layers|from\s+coursekit\s+import\s+[^\n]*\blayers\b"),
     "imports the reference implementation (coursekit.layers)"),
    (re.compile(r"\b(?:np|numpy)(?:\s*\.\s*\w+)+\s*=(?!=)"), "assigns to a numpy attribute"),
    (re.compile(r"\b(?:_?ck|checks|_mine)\s*\.\s*\w+\s*=(?!=)|coursekit\.checks\s*\.\s*\w+\s*=(?!=)"),
     "patches coursekit.checks"),
    (re.compile(r"\bsys\s*\.\s*modules\b"), "edits sys.modules"),
    (re.compile(r"\bimportlib\s*\.\s*\w+\s*=(?!=)|builtins\s*\.\s*\w+\s*=(?!=)"), "patches importlib or builtins"),
    (re.compile(r"\bget_ipython\s*\(\s*\)\s*\.\s*(?:input_transformers|ast_transformers|events)"),
     "installs IPython hooks that rewrite later cells"),
)


KEPT_OWN = "# This cell was missing from the submission; {names} come(s) from the student's own cells.\n"


def _defines(source: str) -> set:
    """Top-level names a cell defines (functions, classes, assignments); magics and shell lines ignored."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def normalise_name(stem: str) -> str:
    s = stem.strip().lower()
    changed = True
    while changed:
        changed = False
        for pattern in _COPY_SUFFIXES:
            new = pattern.sub("", s).strip()
            if new != s:
                s, changed = new, True
    return s.replace(" ", "_")


def find_notebook(hw: str, folder: Path):
    """``(path, note)``: the student's notebook for ``hw`` in ``folder`` (or one level down)."""
    folder = Path(folder)
    exact = folder / f"{hw}.ipynb"
    if is_plain_file(exact):
        return exact, None
    if not folder.is_dir() or folder.is_symlink():
        return None, None
    candidates = []
    for path in sorted(list(folder.glob("*.ipynb")) + list(folder.glob("*/*.ipynb"))):
        if ".ipynb_checkpoints" in path.parts or not is_plain_file(path) or path.parent.is_symlink():
            continue
        if normalise_name(path.stem) == hw.lower():
            candidates.append(path)
    if not candidates:
        return None, None
    # the latest save wins (a student re-uploading makes "(1)", "(2)" ...)
    best = max(candidates, key=lambda p: (p.stat().st_mtime, p.name))
    note = f"renamed {best.relative_to(folder)} to {hw}.ipynb"
    if len(candidates) > 1:
        note += f" (newest of {len(candidates)} candidates)"
    return best, note


def digest_file(path: Path | None) -> str | None:
    if path is None:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class Preflight:
    status: str | None                    # None: gradable; "missing" or "malformed": not
    reason: str | None = None
    notebook: object = None              # the repaired NotebookNode
    notes: list = field(default_factory=list)
    tampering: list = field(default_factory=list)
    path: Path | None = None


def _nbg(cell) -> dict:
    meta = cell.get("metadata") or {}
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


class MalformedCell(ValueError):
    """A cell whose fields have the wrong JSON types."""


def _source(cell) -> str:
    src = cell.get("source", "")
    if isinstance(src, str):
        return src
    if isinstance(src, list) and all(isinstance(line, str) for line in src):
        return "".join(src)
    raise MalformedCell(f"a cell's source is a {type(src).__name__} holding something other than text")


def _norm(src: str) -> str:
    return "\n".join(line.rstrip() for line in src.strip().splitlines())


def load_json(path: Path) -> dict:
    """A notebook file's JSON, checked for the shapes pre-flight relies on (raises on anything else)."""
    raw = path.read_bytes()
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"notebook is {len(raw)} bytes, over the {MAX_NOTEBOOK_BYTES} byte limit")

    try:
        data = json.loads(raw.decode("utf-8", errors="strict"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise nbformat.reader.NotJSONError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise ValueError("not a notebook (no list of cells)")
    for cell in data["cells"]:
        if isinstance(cell, dict):
            _source(cell)
            if not isinstance(cell.get("metadata", {}), dict):
                raise MalformedCell("a cell's metadata is not an object")
    if data.get("nbformat") != 4:
        data = nbformat.reads(json.dumps(data), as_version=4)
    return data


def inspect_submission(hw: str, folder: Path, released) -> Preflight:
    """Find, parse and repair ``hw``'s notebook in ``folder`` against the ``released`` notebook.

    Never raises for what the student handed in: anything that cannot be read or repaired
    is ``malformed``, with the reason.
    """
    try:
        return _inspect(hw, folder, released)
    except Exception as exc:  # noqa: BLE001 - a shape of JSON we did not foresee is still the student's
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Preflight("malformed", f"unreadable {hw}.ipynb: {type(exc).__name__}: {first[:200]}")


def _inspect(hw: str, folder: Path, released) -> Preflight:
    path, rename_note = find_notebook(hw, folder)
    if path is None:
        return Preflight("missing", f"missing {hw}.ipynb")
    try:
        data = load_json(path)
    except Exception as exc:  # noqa: BLE001 - whatever the file is, it is the student's
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return Preflight("malformed", f"unreadable {hw}.ipynb: {type(exc).__name__}: {first[:200]}", path=path)
    repair = _Repair(released, [rename_note] if rename_note else [])
    chosen, extras = repair.sort(data["cells"])
    if not chosen:
        return Preflight("malformed", f"unreadable {hw}.ipynb: not a {hw} notebook (none of its cells "
                                      "belong to the assignment)", path=path)
    cells = repair.rebuild(chosen, extras)
    for pattern, what in GAMING_PATTERNS:
        if any(pattern.search(src) for src in repair.student_code):
            repair.tampering.append(f"student code {what}")
    nb = _assemble(cells, released)
    try:
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001
        return Preflight("malformed", f"unreadable {hw}.ipynb: cannot be repaired: {str(exc)[:200]}", path=path)
    return Preflight(None, None, nb, repair.notes, repair.tampering, path)


def _plain(cell) -> dict:
    """A student's own cell: its type, source and metadata (no outputs)."""
    out = {"cell_type": cell["cell_type"], "metadata": copy.deepcopy(cell.get("metadata") or {}),
           "source": _source(cell)}
    if out["cell_type"] == "code":
        out["outputs"], out["execution_count"] = [], None
    return out


class _Repair:
    """One submission rebuilt on the released notebook's skeleton, with what was done noted."""

    def __init__(self, released, notes: list):
        self.by_id = {_nbg(c)["grade_id"]: c for c in released.cells if _nbg(c).get("grade_id")}
        self.notes, self.tampering, self.student_code = notes, [], []

    def sort(self, cells) -> tuple:
        """``(chosen, extras)``: the first copy of each assignment cell, and the student's own cells by anchor."""
        chosen, extras, anchor = {}, {None: []}, None
        for cell in cells:
            if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
                self.notes.append("dropped a cell that is not a notebook cell")
                continue
            gid = _nbg(cell).get("grade_id")
            if gid in self.by_id:
                if gid in chosen:
                    self.notes.append(f"removed a duplicate of cell {gid}")
                    continue
                chosen[gid], anchor = cell, gid
                continue
            if _nbg(cell):
                if _nbg(cell).get("grade") or _nbg(cell).get("points"):
                    self.tampering.append(f"added a graded cell {gid!r} of its own (ignored)")
                cell = copy.deepcopy(cell)
                cell["metadata"].pop("nbgrader", None)
            extras.setdefault(anchor, []).append(cell)
        return chosen, extras

    def rebuild(self, chosen: dict, extras: dict) -> list:
        own = "\n".join(_source(c) for group in extras.values() for c in group if c.get("cell_type") == "code")
        cells = []
        for anchor in [None, *self.by_id]:
            if anchor is not None:
                cells.append(self._cell(anchor, chosen.get(anchor), own))
            for extra in extras.get(anchor, []):
                cells.append(_plain(extra))
                if extra.get("cell_type") == "code":
                    self.student_code.append(_source(extra))
        return cells

    def _cell(self, gid: str, mine, own_code: str):
        """The released cell ``gid``, with the student's source where it is theirs to write."""
        ref = self.by_id[gid]
        meta = _nbg(ref)
        new = nbformat.from_dict(copy.deepcopy(dict(ref)))
        if "outputs" in new:
            new["outputs"], new["execution_count"] = [], None
        if mine is None:
            names = _defines(ref.source) if meta.get("solution") else set()
            if names and names <= _defines(own_code):
                new["source"] = KEPT_OWN.format(names=", ".join(sorted(names)))
                self.notes.append(f"cell {gid} had lost its nbgrader metadata: kept the student's own cells that "
                                  f"define {', '.join(sorted(names))} instead of the released stub")
            else:
                self.notes.append(f"restored deleted cell {gid}" + (" (the released stub)" if meta.get("solution") else ""))
            return new
        self._compare(gid, ref, mine)
        if meta.get("solution") and not meta.get("locked"):
            new["source"] = _source(mine)
            self.student_code.append(new["source"])
        elif _norm(_source(mine)) != _norm(ref.source):
            self.tampering.append(f"edited locked cell {gid} (restored)")
        return new

    def _compare(self, gid: str, ref, mine) -> None:
        meta = _nbg(ref)
        mine_meta = {k: v for k, v in _nbg(mine).items() if k not in ("checksum", "cell_type")}
        ref_meta = {k: v for k, v in meta.items() if k not in ("checksum", "cell_type")}
        if mine.get("cell_type") != ref.cell_type:
            if meta.get("locked") or meta.get("grade"):
                self.tampering.append(f"changed the type of cell {gid} to {mine.get('cell_type')} (restored)")
            else:
                self.notes.append(f"restored the type of cell {gid} to {ref.cell_type}")
        if mine_meta != ref_meta:
            changed = sorted(k for k in set(mine_meta) | set(ref_meta) if mine_meta.get(k) != ref_meta.get(k))
            self.tampering.append(f"changed the nbgrader metadata of cell {gid} ({', '.join(changed)}; restored)")


def _assemble(cells: list, released):
    """A notebook of ``cells`` with the released metadata and valid, unique cell ids."""
    nb = new_notebook(metadata=copy.deepcopy(released.metadata))
    nb.nbformat_minor = released.get("nbformat_minor", nb.nbformat_minor)
    seen = set()
    for k, c in enumerate(cells):
        cid = c.get("id")
        if nb.nbformat_minor >= 5 and (not isinstance(cid, str) or cid in seen or not _ID.match(cid)):
            cid = f"student-{k}"
        if nb.nbformat_minor < 5:
            c.pop("id", None)
        else:
            c["id"] = cid
            seen.add(cid)
    nb.cells = [nbformat.from_dict(c) for c in cells]
    return nb
