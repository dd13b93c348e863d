"""Similarity: planted copies (renamed variables, reordered functions, changed comments) rank above every
honest pair in a class of 60 (fast: notebooks are read, never run).

Honest students are generated from several different correct implementations of each function, with
optional input checks, temporaries and comments, and names of their own; so two honest students share a
function's structure only when they happened to pick the same implementation and the same options.
"""
from __future__ import annotations

import random
import re

import nbformat
import pytest

from autograder import similarity
from autograder.cli import main
from term_support import collected, released_notebook, student_notebook

HW = "hwsim"
STUBS = {f"f{i}": f"def f{i}(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()" for i in range(5)}
TESTS = {f"test_f{i}": f"assert f{i} is not None" for i in range(5)}

IMPLS = {
    "f0": ["def f0({x}):\n    {t} = 0.0\n    for {v} in {x}:\n        {t} += {v} * {v}\n    return {t} ** 0.5",
           "def f0({x}):\n    return np.sqrt(np.sum(np.asarray({x}) ** 2))",
           "def f0({x}):\n    {t} = np.asarray({x}, dtype=float)\n    return float(np.sqrt({t} @ {t}))",
           "def f0({x}):\n    return np.linalg.norm({x})"],
    "f1": ["def f1({x}):\n    {t} = np.exp({x} - np.max({x}))\n    return {t} / {t}.sum()",
           "def f1({x}):\n    {t} = []\n    {m} = max({x})\n    for {v} in {x}:\n        {t}.append(math.exp({v} - {m}))"
           "\n    {s} = sum({t})\n    return [{v} / {s} for {v} in {t}]",
           "def f1({x}):\n    {x} = np.asarray({x})\n    {x} = {x} - {x}.max()\n    return np.exp({x}) / np.exp({x}).sum()",
           "def f1({x}):\n    {m} = np.max({x})\n    {s} = np.log(np.sum(np.exp({x} - {m}))) + {m}\n"
           "    return np.exp({x} - {s})"],
    "f2": ["def f2({x}):\n    {t} = np.zeros(len({x}) + 1)\n    for {v} in range(len({x})):\n"
           "        {t}[{v} + 1] = {t}[{v}] + {x}[{v}]\n    return {t}",
           "def f2({x}):\n    return np.concatenate([[0.0], np.cumsum({x})])",
           "def f2({x}):\n    {t} = [0.0]\n    for {v} in {x}:\n        {t}.append({t}[-1] + {v})\n    return np.array({t})",
           "def f2({x}):\n    {t} = np.cumsum(np.r_[0.0, {x}])\n    return {t}"],
    "f3": ["def f3({x}):\n    return np.maximum({x}, 0)",
           "def f3({x}):\n    {t} = np.array({x}, copy=True)\n    {t}[{t} < 0] = 0\n    return {t}",
           "def f3({x}):\n    return np.where({x} > 0, {x}, 0.0)",
           "def f3({x}):\n    return [{v} if {v} > 0 else 0 for {v} in {x}]"],
    "f4": ["def f4({x}):\n    {c} = {{}}\n    for {v} in {x}:\n        {c}[{v}] = {c}.get({v}, 0) + 1\n"
           "    return max({c}, key={c}.get)",
           "def f4({x}):\n    {u}, {c} = np.unique({x}, return_counts=True)\n    return {u}[np.argmax({c})]",
           "def f4({x}):\n    return collections.Counter({x}).most_common(1)[0][0]",
           "def f4({x}):\n    {b} = np.bincount(np.asarray({x}))\n    return int(np.argmax({b}))"],
}
CHECKS = ["    if len({x}) == 0:\n        raise ValueError('empty input')\n",
          "    {x} = list({x}) if not hasattr({x}, 'shape') else {x}\n",
          "    assert {x} is not None, 'no input'\n"]
NAMES = ["x", "xs", "data", "values", "arr", "a", "inp", "vec", "seq", "items", "z", "q"]


def _fill(template: str, rng: random.Random) -> str:
    names = rng.sample(NAMES, 7)
    return template.format(x=names[0], t=names[1], v=names[2], m=names[3], s=names[4], c=names[5], u=names[6],
                           b=names[1])


def honest_function(name: str, rng: random.Random) -> str:
    impl = _fill(rng.choice(IMPLS[name]), rng)
    header, body = impl.split("\n", 1)
    extra = "".join(_fill(c, random.Random(0)).replace("{x}", "x") for c in CHECKS if rng.random() < 0.35)
    arg = re.search(r"\((\w+)\)", header).group(1)
    extra = re.sub(r"\bx\b", arg, extra)
    comment = f"    # {rng.choice(['straightforward', 'vectorised', 'see lecture 3', 'works on lists'])}\n" \
        if rng.random() < 0.5 else ""
    return f"{header}\n{comment}{extra}{body}"


def disguise(src: str, rng: random.Random) -> str:
    """The cheat: rename every local name, drop and add comments."""
    names = set(re.findall(r"\b(x|xs|data|values|arr|a|inp|vec|seq|items|z|q)\b", src))
    for old in names:
        src = re.sub(rf"\b{old}\b", f"my_{old}_{rng.randint(10, 99)}", src)
    src = re.sub(r"\n\s*# .*", "", src)
    return src.replace("\n", "  # my own work\n", 1)


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    rng = random.Random(15)
    course = tmp_path_factory.mktemp("sim") / "course"
    released = released_notebook(STUBS, TESTS)
    (course / "release" / HW).mkdir(parents=True)
    nbformat.write(released, course / "release" / HW / f"{HW}.ipynb")
    solutions = {}
    for k in range(60):
        solutions[f"s{k:02d}"] = {g: honest_function(g, rng) for g in STUBS}
    planted = [("s03", "c01"), ("s17", "c02"), ("s42", "c03")]
    for source, cheat in planted:
        funcs = {g: disguise(src, rng) for g, src in solutions[source].items()}
        order = list(funcs)
        rng.shuffle(order)  # reordered: all functions in one cell of their own, in another order
        solutions[cheat] = {g: ("" if i else "\n\n".join(funcs[o] for o in order)) for i, g in enumerate(STUBS)}
    for student, sol in solutions.items():
        collected(course, HW, student, None, student_notebook(released, sol))
    return course, planted


def test_planted_copies_rank_above_every_honest_pair(klass):
    course, planted = klass
    pairs = similarity.rank_pairs(similarity.load_class(HW, course)[0])
    cheats = {frozenset(p) for p in planted}
    ranked = [frozenset((p.a, p.b)) for p in pairs]
    honest = [p.score for p in pairs if frozenset((p.a, p.b)) not in cheats]
    assert set(ranked[:3]) == cheats, [(p.a, p.b, round(p.score, 2)) for p in pairs[:6]]
    assert min(p.score for p in pairs if frozenset((p.a, p.b)) in cheats) > max(honest)
    assert len({p.a for p in pairs} | {p.b for p in pairs}) == 63


def test_renaming_and_comments_do_not_change_the_normalised_tokens():
    rng = random.Random(1)
    src = honest_function("f1", rng)
    same = [t.text for t in similarity.normalise([src])]
    assert same == [t.text for t in similarity.normalise([disguise(src, rng)])]
    assert "exp" in same and "V" in same  # library calls stay, names go


def test_starter_code_and_test_cells_are_not_compared(tmp_path):
    released = released_notebook(STUBS, TESTS)
    (tmp_path / "release" / HW).mkdir(parents=True)
    nbformat.write(released, tmp_path / "release" / HW / f"{HW}.ipynb")
    for s in ("u1", "u2"):  # both only handed in the stubs, and edited a test cell the same way
        nb = student_notebook(released, {})
        nb.cells[3].source = "assert True  # same edit in both"
        collected(tmp_path, HW, s, None, nb)
    subs, starter = similarity.load_class(HW, tmp_path)
    assert starter and all(not s.prints for s in subs)
    assert similarity.rank_pairs(subs) == []


def test_the_report_shows_matching_regions_side_by_side(klass, capsys):
    course, planted = klass
    assert main(["similarity", HW, "--top", "5", "--course-dir", str(course)]) == 0
    page = (course / "reports" / HW / "similarity.html").read_text()
    assert "class='side'" in page and page.count("<mark>") > 20
    assert "s03 and c01" in page or "c01 and s03" in page
    assert "c01" in capsys.readouterr().out
