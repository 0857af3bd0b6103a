"""PyTorch side of the comparison: the three anchor configurations (the networks,
batch sizes and optimiser of the PyTorch reference trainer), on the same data as
regulab's `pps`: the first 10,000 Fashion-MNIST training images with their labels
(Debian's dataset-fashion-mnist), pixels scaled to [0, 1]. One JSON line per (config,
threads) with the median examples/s over EPOCHS epochs, each on a fresh network (after
a warm-up epoch), and a digest of the last network's weights."""
import gzip, hashlib, json, os, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

N = 10000
FASHION = "/usr/share/datasets/fashion-mnist"


def fashion_first(n):
    """The first n training images (float32 in [0, 1]) and labels of Fashion-MNIST."""
    with gzip.open(os.path.join(FASHION, "train-images-idx3-ubyte.gz")) as f:
        raw = f.read(16 + n * 784)
    with gzip.open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz")) as f:
        lab = f.read(8 + n)
    X = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(n, 784)
    y = torch.frombuffer(bytearray(lab[8:]), dtype=torch.uint8).long()
    return X.float() / 255.0, y
CFGS = [
    dict(sizes=[784, 800, 10], act="sigmoid", B=10, keep=(1, 1), l2=0.0, lr=0.5),
    dict(sizes=[784, 800, 10], act="sigmoid", B=100, keep=(1, 1), l2=0.0, lr=0.5),
    dict(sizes=[784, 800, 800, 10], act="relu", B=100, keep=(0.8, 0.5), l2=1e-4, lr=0.05),
]


class MLP(nn.Module):
    def __init__(s, sizes, act, keep):
        super().__init__()
        s.ls = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for l in s.ls:
            nn.init.uniform_(l.weight, -0.2, 0.2)
            nn.init.zeros_(l.bias)
        s.act = torch.sigmoid if act == "sigmoid" else F.relu
        s.keep = keep

    def forward(s, x):
        if s.keep[0] < 1:
            x = F.dropout(x, 1 - s.keep[0], s.training)
        for l in s.ls[:-1]:
            x = s.act(l(x))
            if s.keep[1] < 1:
                x = F.dropout(x, 1 - s.keep[1], s.training)
        return s.ls[-1](x)


def run(c, epochs, X, y):
    torch.manual_seed(1)
    ts = []
    for ep in range(epochs + 1):
        # a fresh network for every epoch (as regulab's pps does)
        m = MLP(c["sizes"], c["act"], c["keep"])
        opt = torch.optim.SGD(m.parameters(), lr=c["lr"], weight_decay=c["l2"])
        t0 = time.perf_counter()
        perm = torch.randperm(N)
        for i in range(0, N, c["B"]):
            idx = perm[i:i + c["B"]]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(m(X[idx]), y[idx]).backward()
            opt.step()
        if ep > 0:
            ts.append(time.perf_counter() - t0)
    ts.sort()
    h = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in m.parameters()))
    return N / ts[len(ts) // 2], h.hexdigest()[:16]


epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
X, y = fashion_first(N)
for i, c in enumerate(CFGS):
    for threads in (1, 2):
        torch.set_num_threads(threads)
        pps, digest = run(c, epochs, X, y)
        print(json.dumps(dict(config=i, threads=threads, pps=round(pps), digest=digest,
                              torch=torch.__version__)), flush=True)
