"""Escape rates of homework 4's and 5's hidden tests: how often each wrong corpus case keeps a point.

Every corpus case (tests/corpus/hw4_corpus.py, hw5_corpus.py) is graded in-process over many seeds,
as the grader would grade honest code: a wrong case *escapes* on a seed when a test it must fail
passes; a test failing that the case should pass (a correct variant losing a point, or a bug charged
twice) is counted as an *unexpected failure*. Prints one Markdown table per homework.

    python benchmarks/escape_rates_hw45.py --seeds 300 --other-seeds 30 --jobs 2

Escapes count the tests a wrong case must fail, on every seed; the tests it must pass are run on the
first ``--other-seeds`` seeds (all of them by default), and every test of a correct variant on every seed.

Tests that train a network (deterministic, public) are left out; tests/test_homework_hw4.py and
hw5 grade them end to end.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "corpus"))

import hw4_corpus  # noqa: E402
import hw5_corpus  # noqa: E402
import hw45_inprocess as run  # noqa: E402

CORPORA = {"hw4": hw4_corpus, "hw5": hw5_corpus}


def measure(job: tuple) -> dict:
    """Grade one case over ``seeds``; returns its escapes and unexpected failures."""
    hw, kind, index, seeds, other_seeds = job
    torch.set_num_threads(1)  # tiny tensors: more threads only contend
    corpus = CORPORA[hw]
    case = getattr(corpus, kind)[index]
    nb = run.edited(run.source(corpus.HW), case)
    tests = {k: v for k, v in run.test_cells(nb).items() if k not in corpus.SLOW}
    ns = run.namespace(nb)
    escapes, unexpected, example = 0, 0, ""
    n_other = len(seeds) if not case.lost else min(other_seeds, len(seeds))
    for k, seed in enumerate(seeds):
        # every cell on the first n_other seeds, then only the cells the case must fail
        failed = run.failing(ns, tests, seed, only=None if k < n_other else set(case.lost))
        if set(case.lost) - set(corpus.SLOW) - set(failed):
            escapes += 1
        extra = set(failed) - set(case.lost)
        if extra:
            unexpected += 1
            example = example or f"seed {seed}: {failed[sorted(extra)[0]]}"
    return {"case": case, "kind": kind, "escapes": escapes, "unexpected": unexpected, "n": len(seeds),
            "n_other": n_other,
            "example": example, "points": sum(corpus.POINTS[t] for t in case.lost), "slow": corpus.SLOW}


def _indexed(item: tuple) -> tuple:
    return item[0], measure(item[1])


def table(results: list) -> str:
    rows = ["| case | must fail (points) | escapes | escape rate | unexpected failures |", "|---|---|---:|---:|---:|"]
    for r in results:
        lost = ", ".join(f"`{t}`" for t in r["case"].lost) or "nothing (correct variant)"
        measured = set(r["case"].lost) - set(r["slow"])
        rate = f"{r['escapes'] / r['n']:.2%}" if measured else ("end to end only" if r["case"].lost else "-")
        rows.append(f"| {r['case'].name} | {lost} ({r['points']}) | {r['escapes']} / {r['n']} | {rate} | "
                    f"{r['unexpected']} / {r['n_other']} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--other-seeds", type=int, default=None,
                        help="for a wrong case, run the tests it must pass on only this many of the seeds")
    parser.add_argument("--hw", choices=sorted(CORPORA), nargs="*", default=sorted(CORPORA))
    args = parser.parse_args(argv)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    other = args.seeds if args.other_seeds is None else args.other_seeds
    jobs = [(hw, kind, i, seeds, other) for hw in args.hw for kind in ("WRONG", "CORRECT")
            for i in range(len(getattr(CORPORA[hw], kind)))]
    results = [None] * len(jobs)
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        for k, r in pool.imap_unordered(_indexed, list(enumerate(jobs))):
            results[k] = r
            print(f"{r['case'].name}: {r['escapes']} escapes, {r['unexpected']} unexpected failures in {r['n']} seeds",
                  file=sys.stderr, flush=True)
    bad = 0
    for hw in args.hw:
        mine = [r for job, r in zip(jobs, results) if job[0] == hw]
        print(f"\n### {CORPORA[hw].HW}: {len(seeds)} seeds from {args.first_seed}\n\n{table(mine)}")
        for r in mine:
            if r["example"]:
                print(f"- {r['case'].name}: unexpected failure, {r['example'][:300]}")
        bad += sum(r["escapes"] / r["n"] >= 0.001 or r["unexpected"] for r in mine)
    print(f"\n{bad} case(s) with an escape rate of 0.1 % or more, or an unexpected failure")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
