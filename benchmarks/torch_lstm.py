"""The PyTorch side of `benchmarks/bench.py`: train-step throughput of an equivalent `torch.nn.LSTM`.

Runs in its own interpreter (torch is not a salesjax dependency; `bench.py` creates a venv with
a CPU build and calls this file with it). It reads one JSON object of settings from argv[1] and prints
one JSON object with the result on its last stdout line, so the two sides share no imports. Settings
`"device": "cuda"` time the same step on the GPU (one run: thread counts are a CPU setting).

The model mirrors `salesjax.model.Forecaster`: store and category embeddings broadcast over time and
concatenated to the inputs, `num_layers` LSTM layers (oneDNN's fused CPU kernel), dropout after every
layer, a Linear head on the last `horizon` steps, cumulative softplus quantiles, masked pinball loss,
global-norm gradient clipping and AdamW, float32. Each step gathers its batch from the full window
tensors with random indices, as the JAX step does.
"""

import json
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn


class Net(nn.Module):
    """Embeddings + stacked LSTM + quantile head, shaped like salesjax's Forecaster."""

    def __init__(self, s: dict):
        super().__init__()
        self.store = nn.Embedding(s["num_stores"], s["store_embedding"])
        self.category = nn.Embedding(s["num_categories"], s["category_embedding"])
        width = s["features"] + s["store_embedding"] + s["category_embedding"]
        layers, dropout = s["num_layers"], s["dropout"]
        self.lstm = nn.LSTM(
            width, s["hidden"], layers, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(s["hidden"], len(s["quantiles"]))
        self.horizon = s["horizon"]

    def forward(self, x, store, category):
        """f32[B,T,F], i64[B], i64[B] -> f32[B,H,Q]."""
        static = torch.cat([self.store(store), self.category(category)], -1)
        h = torch.cat([x, static[:, None].expand(-1, x.shape[1], -1)], -1)
        out, _ = self.lstm(h)
        raw = self.head(self.drop(out[:, -self.horizon :]))
        return torch.cumsum(nn.functional.softplus(raw), -1)


def pinball(pred, y, mask, q):
    """Masked mean pinball loss, as salesjax.train.pinball_loss."""
    err = y[..., None] - pred
    loss = torch.maximum(q * err, (q - 1.0) * err).mean(-1)
    return (loss * mask).sum() / mask.sum().clamp_min(1.0)


def measure(s: dict, threads: int) -> dict:
    """Median seconds per train step over `repeats` runs of `steps` steps, after `warmup` steps."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = torch.device(s.get("device", "cpu"))
    rng = np.random.default_rng(0)
    n, t, b = s["num_windows"], s["context"] + s["horizon"], s["batch_size"]
    x = torch.from_numpy(rng.standard_normal((n, t, s["features"]), np.float32)).to(device)
    store = torch.from_numpy(rng.integers(0, s["num_stores"], n)).to(device)
    category = torch.from_numpy(rng.integers(0, s["num_categories"], n)).to(device)
    y = torch.from_numpy(rng.standard_normal((n, s["horizon"]), np.float32)).to(device)
    mask = torch.ones(n, s["horizon"], device=device)
    q = torch.tensor(s["quantiles"], dtype=torch.float32, device=device)
    net = Net(s).to(device)
    net.train()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-2)
    batches = torch.from_numpy(rng.integers(0, n, (s["warmup"] + s["steps"], b))).to(device)

    def step(idx):
        pred = net(x[idx], store[idx], category[idx])
        loss = pinball(pred, y[idx], mask[idx], q)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        return loss

    for i in range(s["warmup"]):
        step(batches[i])
    times = []
    for _ in range(s["repeats"]):
        if device.type == "cuda":
            torch.cuda.synchronize()  # the warm-up's queued kernels are not this repeat's time
        start = time.perf_counter()
        for i in range(s["steps"]):
            loss = step(batches[s["warmup"] + i])
        loss.detach().item()
        times.append((time.perf_counter() - start) / s["steps"])
    return {"threads": threads, "seconds_per_step": statistics.median(times), "all": times}


def main() -> None:
    """Measure each thread count in argv[1]'s settings; print the results and the best as JSON."""
    settings = json.loads(sys.argv[1])
    threads = settings["threads"] if settings.get("device", "cpu") == "cpu" else settings["threads"][:1]
    runs = [measure(settings, t) for t in threads]
    best = min(runs, key=lambda r: r["seconds_per_step"])
    print(
        json.dumps(
            {
                "torch_version": torch.__version__,
                "device": settings.get("device", "cpu"),
                "mkldnn": torch.backends.mkldnn.is_available(),
                "runs": runs,
                "best_threads": best["threads"],
                "windows_per_s": settings["batch_size"] / best["seconds_per_step"],
            }
        )
    )


if __name__ == "__main__":
    main()
