"""PyTorch side of the lab-study comparison: the 11 single-seed runs of
`experiments/lab4.toml` on Fashion-MNIST, written plainly in PyTorch, one after the other.

    python benches/compare/torch_lab.py [--threads 2] [--epochs N | --quick] [--only RUN]
                                        [--data-dir DIR]

What it does per run is what `regulab run experiments/lab4.toml --set
data.dataset=fashion-mnist --set seeds=1` does (harness/src/run/train.rs, data/split.rs),
with the same sizes but its own random numbers:

* data: Debian's Fashion-MNIST (the gzipped IDX files regulab reads), pixels / 255;
  validation = the last 10,000 training images, training pool = 1,000 images drawn at
  random (once per run) from the other 50,000, visited in a fresh order every epoch;
  test = the 10,000 t10k images;
* network: 784-800-10, sigmoid hidden layer, softmax / cross-entropy output, weights
  uniform in +-0.2 (hidden) and +-0.1 (output), biases zero; SGD, lr 0.5, batch 10;
* runs: baseline; L1 1e-3, 1e-4, 1e-5; L2 1e-3, 1e-4, 1e-5 (30 epochs each); dropout
  keep_input x keep_hidden in {0.5, 0.8}^2 (inverted scaling, 50 epochs);
* penalties under the 2015 lab's convention (README, "Penalty conventions"): the step is
  lr * (G + l1 sgn(p) + l2 p) / B for weights and biases, G the summed batch gradient;
  with the mean loss's gradient G / B in p.grad, (l1 sgn(p) + l2 p) / B is added to it;
* evaluation, as regulab: before training and after every epoch the training pool and
  the validation set (cost with the penalty, accuracy), after the last epoch the test
  set, all in batches of 1000 under torch.no_grad().

Prints one JSON line at the end: wall seconds (from after the imports; data loading
included), runs, epochs trained in total, torch version, threads, and per run its final
training, validation and test accuracy (a sanity check that it learns)."""
import argparse, gzip, json, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

T0 = time.perf_counter()

DEBIAN = "/usr/share/datasets/fashion-mnist"
VALIDATION = 10000
POOL = 1000
BATCH = 10
EVAL_BATCH = 1000
LR = 0.5
SEED = 20261125

# (name, epochs, l1, l2, keep_input, keep_hidden): the plan of experiments/lab4.toml
RUNS = [("baseline", 30, 0.0, 0.0, 1.0, 1.0)]
RUNS += [(f"l1_l1={v}", 30, float(v), 0.0, 1.0, 1.0) for v in ("1e-3", "1e-4", "1e-5")]
RUNS += [(f"l2_l2={v}", 30, 0.0, float(v), 1.0, 1.0) for v in ("1e-3", "1e-4", "1e-5")]
RUNS += [(f"dropout_keep_input={ki}_keep_hidden={kh}", 50, 0.0, 0.0, ki, kh)
         for ki in (0.5, 0.8) for kh in (0.5, 0.8)]


def idx(path, magic, dims):
    """The payload of a gzipped IDX file as a uint8 tensor of shape (n, *dims)."""
    with gzip.open(path) as f:
        raw = f.read()
    if int.from_bytes(raw[:4], "big") != magic:
        sys.exit(f"{path}: not an IDX file with magic {magic:#x}")
    n = int.from_bytes(raw[4:8], "big")
    head = 8 + 4 * len(dims)
    t = torch.frombuffer(bytearray(raw[head:]), dtype=torch.uint8)
    if t.numel() != n * (dims[0] * dims[1] if dims else 1):
        sys.exit(f"{path}: {t.numel()} bytes of data for {n} examples")
    return t.reshape(n, *dims)


def load(data_dir, name):
    X = idx(os.path.join(data_dir, f"{name}-images-idx3-ubyte.gz"), 0x803, (28, 28))
    y = idx(os.path.join(data_dir, f"{name}-labels-idx1-ubyte.gz"), 0x801, ())
    return X.reshape(len(X), 784), y.long()


class MLP(nn.Module):
    def __init__(self, keep_input, keep_hidden):
        super().__init__()
        self.hidden = nn.Linear(784, 800)
        self.out = nn.Linear(800, 10)
        nn.init.uniform_(self.hidden.weight, -0.2, 0.2)
        nn.init.uniform_(self.out.weight, -0.1, 0.1)
        nn.init.zeros_(self.hidden.bias)
        nn.init.zeros_(self.out.bias)
        self.drop_input = 1.0 - keep_input
        self.drop_hidden = 1.0 - keep_hidden

    def forward(self, x):
        # F.dropout scales the kept units by 1 / keep while training (inverted dropout)
        if self.drop_input > 0:
            x = F.dropout(x, self.drop_input, self.training)
        h = torch.sigmoid(self.hidden(x))
        if self.drop_hidden > 0:
            h = F.dropout(h, self.drop_hidden, self.training)
        return self.out(h)


def penalty(model, l1, l2):
    """The lab2015 cost's penalty: (l1/B) sum|p| + (l2/B)/2 sum p^2 over all parameters."""
    if l1 == 0 and l2 == 0:
        return 0.0
    s = 0.0
    for p in model.parameters():
        if l1:
            s += l1 / BATCH * p.abs().sum().item()
        if l2:
            s += l2 / BATCH / 2 * p.pow(2).sum().item()
    return s


@torch.no_grad()
def evaluate(model, X, y, pen):
    """Cost (mean cross-entropy + penalty) and accuracy on X, y in batches of EVAL_BATCH."""
    model.eval()
    nll, right = 0.0, 0
    for i in range(0, len(X), EVAL_BATCH):
        out = model(X[i:i + EVAL_BATCH])
        nll += F.cross_entropy(out, y[i:i + EVAL_BATCH], reduction="sum").item()
        right += (out.argmax(1) == y[i:i + EVAL_BATCH]).sum().item()
    model.train()
    return nll / len(X) + pen, right / len(X)


def run(r, seed, epochs, train_X, train_y, valid, test):
    name, _, l1, l2, ki, kh = r
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MLP(ki, kh)
    pool = torch.randperm(len(train_X), generator=g)[:POOL]
    Xp, yp = train_X[pool].float() / 255.0, train_y[pool]
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    params = list(model.parameters())
    rows = []

    def row(epoch):
        pen = penalty(model, l1, l2)
        rows.append((epoch, evaluate(model, Xp, yp, pen), evaluate(model, *valid, pen)))

    row(0)
    for epoch in range(1, epochs + 1):
        order = torch.randperm(POOL, generator=g)
        for i in range(0, POOL, BATCH):
            b = order[i:i + BATCH]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(Xp[b]), yp[b]).backward()
            if l1 or l2:
                # the step is lr * (G + l1 sgn(p) + l2 p) / B and p.grad holds G / B
                # (B = this batch's size: the pool is a whole number of batches)
                n = len(b)
                with torch.no_grad():
                    for p in params:
                        p.grad.add_((l1 * torch.sign(p) + l2 * p) / n)
            opt.step()
        row(epoch)
    test_cost, test_acc = evaluate(model, *test, penalty(model, l1, l2))
    (_, (tc, ta), (vc, va)) = rows[-1]
    return dict(run=name, epochs=epochs, train_acc=round(ta, 4), valid_acc=round(va, 4),
                test_acc=round(test_acc, 4), seconds=round(time.perf_counter() - t0, 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--epochs", type=int, default=None,
                    help="train every run this many epochs instead of 30 / 50 (smoke tests)")
    ap.add_argument("--quick", action="store_true", help="--epochs 1")
    ap.add_argument("--only", action="append", metavar="RUN", choices=[r[0] for r in RUNS],
                    help="train only this run (repeatable; a sanity check, not a timing)")
    ap.add_argument("--data-dir", default=DEBIAN,
                    help=f"directory of Fashion-MNIST's gzipped IDX files (default {DEBIAN})")
    a = ap.parse_args()
    if a.quick:
        a.epochs = a.epochs or 1
    if a.threads < 1 or (a.epochs is not None and a.epochs < 1):
        ap.error("--threads and --epochs must be at least 1")
    torch.set_num_threads(a.threads)

    train_X, train_y = load(a.data_dir, "train")
    test_X, test_y = load(a.data_dir, "t10k")
    if len(train_X) <= VALIDATION + POOL:
        sys.exit(f"{a.data_dir}: {len(train_X)} training images, need more than "
                 f"{VALIDATION + POOL}")
    n = len(train_X) - VALIDATION
    valid = (train_X[n:].float() / 255.0, train_y[n:])
    test = (test_X.float() / 255.0, test_y)

    results = [run(r, SEED, a.epochs or r[1], train_X[:n], train_y[:n], valid, test)
               for r in RUNS if not a.only or r[0] in a.only]
    print(json.dumps(dict(
        seconds=round(time.perf_counter() - T0, 2), runs=len(results),
        epochs=sum(r["epochs"] for r in results), torch=torch.__version__,
        threads=a.threads, results=results)), flush=True)


if __name__ == "__main__":
    main()
