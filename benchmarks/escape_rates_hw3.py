"""How often homework 3's tests let a wrong implementation through, and cost a correct one a point.

Grades every case of tests/corpus/hw3_corpus.py in this process, once per seed of the hidden
tests (the way the grader decides for honest code), and prints a Markdown table: for each wrong
case, the share of seeds on which it kept a point it should lose ("escaped") and on which it
lost a point it should keep; for each correct variant, the share of seeds on which it lost any.

    python benchmarks/escape_rates_hw3.py --seeds 300

The book's homework 3 page ("for instructors") holds the table of the last full run.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_corpus():
    spec = importlib.util.spec_from_file_location("hw3_corpus", REPO / "tests" / "corpus" / "hw3_corpus.py")
    corpus = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(corpus)
    return corpus


def rates(corpus, case, seeds) -> tuple[int, int]:
    """(seeds on which the case kept a point it should lose, seeds on which it lost one it should keep)."""
    escaped = overcharged = 0
    cache: dict = {}
    for seed in seeds:
        passed = corpus.score_in_process(case, seed, cache=cache)
        failed = {g for g, ok in passed.items() if not ok}
        escaped += bool(set(case.lost) - failed)
        overcharged += bool(failed - set(case.lost))
    return escaped, overcharged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300, help="hidden-test seeds per case (0, 1, ...)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args(argv)
    corpus = load_corpus()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    start = time.perf_counter()
    print(f"homework 3: {len(corpus.WRONG)} wrong and {len(corpus.CORRECT)} correct implementations, "
          f"{args.seeds} seeds each\n")
    print("| case | must lose | points | escaped | lost a point it should keep |")
    print("|---|---|---:|---:|---:|")
    worst = 0
    for case in (*corpus.WRONG, *corpus.CORRECT):
        if args.only not in case.name:
            continue
        escaped, over = rates(corpus, case, seeds)
        worst = max(worst, escaped, over)
        lost = ", ".join(f"`{g}`" for g in case.lost) or "nothing"
        print(f"| `{case.name}` | {lost} | {case.lost_points} | {escaped / args.seeds:.1%} ({escaped}) | "
              f"{over / args.seeds:.1%} ({over}) |", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s")
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
