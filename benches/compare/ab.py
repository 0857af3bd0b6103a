#!/usr/bin/env python3
"""Before/after benchmark medians of two checkouts of regulab, measured in one run.

    python3 benches/compare/ab.py BASE_DIR NEW_DIR [--rounds 2] [--bench gemm ...]
        [-- CRITERION_ARGS...]

BASE_DIR and NEW_DIR are two checkouts (e.g. `git worktree add ../base main`), each
with its bench binaries built (`cargo bench -p regulab-benches --no-run`). For every
bench, the two checkouts take turns (base, new, base, new, ...) for `--rounds` rounds,
so a change of the machine's load during the run falls on both sides alike. After each
criterion run the median of every benchmark it measured is read from the checkout's
`target/criterion/**/new/estimates.json`. Prints a Markdown table: per benchmark the
median over rounds of each side's medians and the ratio new / base (below 1 is faster).
Benchmarks present on only one side are listed apart.
"""
import argparse, json, os, statistics, subprocess, sys


def medians(checkout):
    """{benchmark id: median in ns} of the last criterion run in `checkout`."""
    root = os.path.join(checkout, "target", "criterion")
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) == "new" and "estimates.json" in files:
            with open(os.path.join(dirpath, "estimates.json")) as f:
                est = json.load(f)
            bench = os.path.relpath(os.path.dirname(dirpath), root)
            out[bench] = (os.path.getmtime(os.path.join(dirpath, "estimates.json")),
                          est["median"]["point_estimate"])
    return out


def run(checkout, bench, extra):
    cmd = ["cargo", "bench", "-q", "-p", "regulab-benches", "--bench", bench, "--",
           "--noplot"] + extra
    print(f"== {os.path.basename(os.path.abspath(checkout))}: {' '.join(cmd)}",
          file=sys.stderr, flush=True)
    before = medians(checkout)
    subprocess.run(cmd, cwd=checkout, check=True, stdout=subprocess.DEVNULL)
    after = medians(checkout)
    # only what this run measured (criterion rewrites new/ of each benchmark it ran)
    return {k: v[1] for k, v in after.items() if k not in before or before[k][0] != v[0]}


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--bench", action="append", default=None,
                    help="bench target (repeatable); default gemm dropout update epoch")
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    benches = args.bench or ["gemm", "dropout", "update", "epoch"]
    seen = {"base": {}, "new": {}}
    for bench in benches:
        for _ in range(args.rounds):
            for side, checkout in (("base", args.base), ("new", args.new)):
                for k, v in run(checkout, bench, extra).items():
                    seen[side].setdefault(k, []).append(v)
    both = sorted(set(seen["base"]) & set(seen["new"]))
    print("| benchmark | base | new | new / base |")
    print("|---|---:|---:|---:|")
    for k in both:
        b = statistics.median(seen["base"][k])
        n = statistics.median(seen["new"][k])
        print(f"| {k} | {fmt(b)} | {fmt(n)} | {n / b:.3f} |")
    for side in ("base", "new"):
        only = sorted(set(seen[side]) - set(both))
        if only:
            print(f"\nonly in {side}: " + ", ".join(only))
    ratios = [statistics.median(seen["new"][k]) / statistics.median(seen["base"][k])
              for k in both]
    if ratios:
        print(f"\n{len(ratios)} benchmarks; ratio new / base: median "
              f"{statistics.median(ratios):.3f}, min {min(ratios):.3f}, "
              f"max {max(ratios):.3f}")


if __name__ == "__main__":
    main()
