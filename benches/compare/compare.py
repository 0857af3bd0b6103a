#!/usr/bin/env python3
"""Side by side with PyTorch (when installed), same machine, same run, on Debian's
Fashion-MNIST (dataset-fashion-mnist): the training throughput of the three anchor
configurations, then the wall-clock time of the lab study.

    python3 benches/compare/compare.py [--python PATH_TO_PYTHON_WITH_TORCH] [--epochs 5]
                                       [--no-lab | --lab-only] [--lab-epochs N]

Prints the date and the CPU model first, then two Markdown tables:

* throughput (skipped with --lab-only): builds and runs `pps` (benches/src/bin/pps.rs)
  in release mode, then benches/compare/torch_pps.py with the given Python, on the first
  10,000 training images, a fresh network per measured epoch; median examples/s of
  --epochs epochs and the ratio regulab / PyTorch, plus whether each side's final
  weights are identical between 1 and 2 threads;
* the lab study (skipped with --no-lab; --lab-only runs nothing else): builds the
  release `regulab` and times, around each subprocess, `regulab run experiments/lab4.toml
  --set data.dataset=fashion-mnist --set seeds=1 --no-plot` (the 11 single-seed runs,
  default jobs and threads, into a fresh temporary directory) twice: first with a new
  kernel-choice cache (REGULAB_KERNEL_CACHE in the temporary directory: every product
  is timed, as on a machine's first run), then with the choices that run kept; and then
  benches/compare/torch_lab.py (the same 11 runs written plainly in PyTorch, 2 threads);
  the ratio is PyTorch's time / regulab's. A last line gives both sides' final
  validation accuracy (baseline, and the mean of the 11 runs) as a check that both learn.
  --lab-epochs N trains every run of both sides N epochs instead of 30 / 50 (smoke tests;
  the table then says so)."""
import argparse, csv, datetime, json, os, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASHION = "/usr/share/datasets/fashion-mnist"
NAMES = [
    "(i) 784-800-10 sigmoid, batch 10",
    "(ii) 784-800-10 sigmoid, batch 100",
    "(iii) 784-800-800-10 ReLU, batch 100, dropout 0.8/0.5, L2 1e-4",
]


def lines(cmd):
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for l in f:
                if l.startswith("model name"):
                    return l.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def throughput(a):
    pps = os.path.join(ROOT, "target", "release", "pps")
    ours = lines([pps, str(a.epochs)])
    # (iii) again with the zero-skipping kernels off: the dense work alone (same bits)
    dense = lines(["env", "REGULAB_ZERO_SKIP=off", pps, str(a.epochs), "2"])
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
    for d in dense:
        to = t.get((2, d["threads"]))
        ratio = f"{d['pps'] / to['pps']:.2f}x" if to else "-"
        tp = f"{to['pps']:,}" if to else "-"
        print(f"| (iii) with zero-skipping off (REGULAB_ZERO_SKIP=off) | {d['threads']} | "
              f"{d['pps']:,.0f} | {tp} | {ratio} |")
    print()
    for side, d in (("regulab", r), ("PyTorch", t)):
        if not d:
            continue
        same = ["same" if d[(i, 1)]["digest"] == d[(i, 2)]["digest"] else "DIFFERENT"
                for i in range(3)]
        print(f"{side}: final weights, 1 vs 2 threads: (i) {same[0]}, (ii) {same[1]}, (iii) {same[2]}")


def timed(cmd):
    """Wall-clock seconds of `cmd` run from the repository root, and its stdout (its
    stderr passes through, so a failure says why)."""
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return time.perf_counter() - t0, out


def lab(a):
    """Time the lab study: regulab's release binary twice (with a new kernel-choice cache,
    then with the choices the first run kept), then torch_lab.py on 2 threads."""
    with tempfile.TemporaryDirectory(prefix="regulab-compare-") as tmp:
        cache = os.path.join(tmp, "kernel-choices.json")
        times = []
        for label in ["cold", "kept"]:
            out_dir = os.path.join(tmp, "lab4-" + label)
            cmd = ["env", f"REGULAB_KERNEL_CACHE={cache}",
                   os.path.join(ROOT, "target", "release", "regulab"), "run",
                   os.path.join("experiments", "lab4.toml"), "--set",
                   "data.dataset=fashion-mnist", "--set", "seeds=1", "--no-plot", "--quiet",
                   "--no-fetch", "--data-dir", FASHION, "--out", out_dir]
            if a.lab_epochs:
                cmd += ["--set", f"epochs={a.lab_epochs}"]
            times.append(timed(cmd)[0])
            with open(os.path.join(out_dir, "summary.csv"), newline="") as f:
                rows = list(csv.DictReader(f))
            accs = [row["final_valid_acc"] for row in rows]
            if label == "kept" and accs != first_accs:
                print("WARNING: the run with kept kernel choices gave other accuracies",
                      file=sys.stderr)
            first_accs = accs
        ours, kept = times
    r_acc = {row["run"]: float(row["final_valid_acc"]) for row in rows}
    r_epochs = sum(int(row["epochs_trained"]) for row in rows)
    tcmd = [a.python, os.path.join(ROOT, "benches", "compare", "torch_lab.py"), "--threads", "2",
            "--data-dir", FASHION]
    if a.lab_epochs:
        tcmd += ["--epochs", str(a.lab_epochs)]
    try:
        theirs, out = timed(tcmd)
        t = [json.loads(l) for l in out.splitlines() if l.startswith("{")][-1]
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print(f"PyTorch not available with {a.python} ({e}); regulab only", file=sys.stderr)
        theirs, t = None, None
    version = t["torch"] if t else "-"
    what = f"{len(rows)} runs, {r_epochs} epochs"
    if a.lab_epochs:
        what += f" (--lab-epochs {a.lab_epochs}: NOT the study's 30 / 50)"
    print(f"| study | regulab wall s | regulab wall s, kept kernel choices "
          f"| PyTorch {version} wall s (2 threads) | ratio (PyTorch time / regulab time) "
          f"| ratio, kept choices |")
    print("|---|---:|---:|---:|---:|---:|")
    ratio = f"{theirs / ours:.2f}x" if theirs else "-"
    ratio_kept = f"{theirs / kept:.2f}x" if theirs else "-"
    tt = f"{theirs:.1f}" if theirs else "-"
    print(f"| lab4.toml on Fashion-MNIST, seeds=1: {what} | {ours:.1f} | {kept:.1f} | {tt} "
          f"| {ratio} | {ratio_kept} |")
    print()
    if t and t["epochs"] != r_epochs:
        print(f"WARNING: PyTorch trained {t['epochs']} epochs, regulab {r_epochs}")
    def accs(d):
        return f"baseline {100 * d['baseline']:.2f} %, mean of {len(d)} runs " \
               f"{100 * sum(d.values()) / len(d):.2f} %"
    line = f"final validation accuracy: regulab {accs(r_acc)}"
    if t:
        line += f"; PyTorch {accs({x['run']: x['valid_acc'] for x in t['results']})}"
    print(line + " (own random numbers on each side: close, not equal)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable, help="a Python with torch installed")
    ap.add_argument("--epochs", type=int, default=5, help="measured epochs per throughput line")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--no-lab", action="store_true", help="skip the lab study")
    g.add_argument("--lab-only", action="store_true", help="only the lab study")
    ap.add_argument("--lab-epochs", type=int, default=None,
                    help="train every run of the lab study N epochs on both sides (smoke tests)")
    a = ap.parse_args()
    if a.epochs < 1 or (a.lab_epochs is not None and a.lab_epochs < 1):
        ap.error("--epochs and --lab-epochs must be at least 1")
    # one package per build: built together, shared dependencies would get the union of
    # their features and each binary would be rebuilt when the other is built alone
    build = ["cargo", "build", "--release", "-q", "-p"]
    if not a.lab_only:
        subprocess.run(build + ["regulab-benches", "--bin", "pps"], cwd=ROOT, check=True)
    if not a.no_lab:
        subprocess.run(build + ["regulab", "--bin", "regulab"], cwd=ROOT, check=True)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{now}; CPU: {cpu_model()} ({os.cpu_count()} logical CPUs)")
    print()
    if not a.lab_only:
        throughput(a)
    if not a.no_lab:
        if not a.lab_only:
            print()
        lab(a)


if __name__ == "__main__":
    main()
