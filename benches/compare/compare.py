#!/usr/bin/env python3
"""Side-by-side training throughput: regulab vs PyTorch (when installed), same machine,
same run, the three anchor configurations, on the first 10,000 Fashion-MNIST training
images (Debian's dataset-fashion-mnist), a fresh network per measured epoch.

    python3 benches/compare/compare.py [--python PATH_TO_PYTHON_WITH_TORCH] [--epochs 5]

Builds and runs `pps` (benches/src/bin/pps.rs) in release mode, then
benches/compare/torch_pps.py with the given Python, and prints a Markdown table of
median examples/s and the ratio regulab / PyTorch, plus whether each side's final
weights are identical between 1 and 2 threads."""
import argparse, json, os, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = [
    "(i) 784-800-10 sigmoid, batch 10",
    "(ii) 784-800-10 sigmoid, batch 100",
    "(iii) 784-800-800-10 ReLU, batch 100, dropout 0.8/0.5, L2 1e-4",
]


def lines(cmd):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable, help="a Python with torch installed")
    ap.add_argument("--epochs", type=int, default=5)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "regulab-benches", "--bin", "pps"],
                   cwd=ROOT, check=True)
    ours = lines([os.path.join(ROOT, "target", "release", "pps"), str(a.epochs)])
    try:
        theirs = lines([a.python, os.path.join(ROOT, "benches", "compare", "torch_pps.py"),
                        str(a.epochs)])
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"PyTorch not available with {a.python} ({e}); regulab only", file=sys.stderr)
        theirs = []
    r = {(d["config"], d["threads"]): d for d in ours}
    t = {(d["config"], d["threads"]): d for d in theirs}
    version = theirs[0]["torch"] if theirs else "-"
    print(f"| config | threads | regulab pps | PyTorch {version} pps | ratio |")
    print("|---|---|---|---|---|")
    for i, name in enumerate(NAMES):
        for th in (1, 2):
            ro, to = r[(i, th)], t.get((i, th))
            ratio = f"{ro['pps'] / to['pps']:.2f}x" if to else "-"
            tp = f"{to['pps']:,}" if to else "-"
            print(f"| {name} | {th} | {ro['pps']:,.0f} | {tp} | {ratio} |")
    print()
    for side, d in (("regulab", r), ("PyTorch", t)):
        if not d:
            continue
        same = ["same" if d[(i, 1)]["digest"] == d[(i, 2)]["digest"] else "DIFFERENT"
                for i in range(3)]
        print(f"{side}: final weights, 1 vs 2 threads: (i) {same[0]}, (ii) {same[1]}, (iii) {same[2]}")


if __name__ == "__main__":
    main()
