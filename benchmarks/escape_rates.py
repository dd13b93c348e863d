"""Escape rates of a homework's corpus of wrong implementations, measured in-process over many seeds.

    python benchmarks/escape_rates.py hw1 --seeds 300

Loads ``tests/corpus/<hw>_corpus.py`` (``HW``, ``SOLUTION_CELLS``, ``SLOW``, ``WRONG``,
``CORRECT``; see tests/corpus/hw1_corpus.py), builds each case from the solution
notebook and grades it with :mod:`coursekit.testcases.inprocess`. For a wrong
case, *escape* is the fraction of seeds on which a test that must fail passed;
*extra* the fraction of the first ``--full-seeds`` seeds on which another test
failed (a bug charged twice). For a correct variant, *fails* is the fraction of
seeds on which any test failed. Tests in ``SLOW`` do not depend on the seed and
run once. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

# One BLAS thread, as in the grader's sandboxed kernels: on a loaded machine a multi-threaded BLAS makes
# the training tests' small products twenty times slower and their time budgets meaningless.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from coursekit.testcases import inprocess  # noqa: E402


def load_corpus(hw: str):
    """``tests/corpus/<hw>_corpus.py``; ``hw1_classifiers`` and ``hw1`` name the same corpus."""
    path = REPO / "tests" / "corpus" / f"{hw.split('_')[0]}_corpus.py"
    spec = importlib.util.spec_from_file_location(f"{hw}_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _failed(namespace, tests, seed) -> set:
    return {gid for gid, failure in inprocess.grade(namespace, tests, seed).items() if failure}


def measure_wrong(corpus, code, tests, edits, lost, seeds: int, full_seeds: int) -> tuple:
    """(escape rate, extra-loss rate, one example message of an extra loss or None)."""
    namespace = inprocess.solution_namespace(inprocess.apply_edits(code, edits), corpus.SOLUTION_CELLS)
    slow = [t for t in tests if t.grade_id in corpus.SLOW]
    fast = [t for t in tests if t.grade_id not in corpus.SLOW]
    slow_failed = _failed(namespace, slow, 0)
    must = [t for t in fast if t.grade_id in lost]
    others = [t for t in fast if t.grade_id not in lost]
    escapes = extra = 0
    example = None
    slow_escape = bool(set(lost) & {t.grade_id for t in slow} - slow_failed)
    slow_extra = bool(slow_failed - set(lost))
    for seed in range(seeds):
        escapes += slow_escape or len(_failed(namespace, must, seed)) < len(must)
        if seed < full_seeds:
            extra_failed = _failed(namespace, others, seed)
            extra += slow_extra or bool(extra_failed)
            if extra_failed and example is None:
                example = sorted(extra_failed)
    return escapes / seeds, extra / max(min(full_seeds, seeds), 1), example


def measure_correct(corpus, code, tests, edits, seeds: int) -> tuple:
    namespace = inprocess.solution_namespace(inprocess.apply_edits(code, edits), corpus.SOLUTION_CELLS)
    slow = [t for t in tests if t.grade_id in corpus.SLOW]
    fast = [t for t in tests if t.grade_id not in corpus.SLOW]
    slow_failed = _failed(namespace, slow, 0)
    fails, example = 0, sorted(slow_failed) or None
    for seed in range(seeds):
        failed = _failed(namespace, fast, seed) | slow_failed
        fails += bool(failed)
        example = example or (sorted(failed) or None)
    return fails / seeds, example


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hw", help="homework name, e.g. hw1_classifiers")
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--full-seeds", type=int, default=30, help="seeds on which every test runs (extra losses)")
    parser.add_argument("--only", nargs="*", help="case names to measure")
    parser.add_argument("--no-slow", action="store_true", help="leave out the SLOW tests (quick iterations)")
    args = parser.parse_args(argv)
    corpus = load_corpus(args.hw)
    code, tests = inprocess.read_cells(REPO / "solutions" / corpus.HW / f"{corpus.HW}.ipynb")
    if args.no_slow:
        tests = [t for t in tests if t.grade_id not in corpus.SLOW]
    print(f"{args.hw}: {len(corpus.WRONG)} wrong implementations, {len(corpus.CORRECT)} correct variants, "
          f"{args.seeds} seeds\n")
    print("| case | must fail | escape rate | charged elsewhere |\n|---|---|---:|---:|")
    worst = 0.0
    for name, (edits, lost) in corpus.WRONG.items():
        if (args.only and name not in args.only) or (args.no_slow and set(lost) <= set(corpus.SLOW)):
            continue
        escape, extra, example = measure_wrong(corpus, code, tests, edits, lost, args.seeds, args.full_seeds)
        worst = max(worst, escape, extra)
        note = f" ({', '.join(example)})" if example else ""
        print(f"| {name} | {', '.join(lost)} | {escape:.2%} | {extra:.1%}{note} |", flush=True)
    print("\n| correct variant | runs that lost a point |\n|---|---:|")
    for name, edits in corpus.CORRECT.items():
        if args.only and name not in args.only:
            continue
        fails, example = measure_correct(corpus, code, tests, edits, args.seeds)
        worst = max(worst, fails)
        print(f"| {name} | {fails:.2%}{f' ({chr(44).join(example)})' if example else ''} |", flush=True)
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
