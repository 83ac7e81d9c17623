"""Train-step throughput against PyTorch, the machine's fp32 peak, epoch time and scaling.

Run as `uv run python benchmarks/bench.py [--quick] [--out reports/benchmarks.json]`; a developer tool,
not part of the salesjax package or the DVC pipeline.

Everything is timed as medians over repeats after a warm-up, in one process (the PyTorch side in a
subprocess with its own interpreter, see `benchmarks/torch_lstm.py`), and written to one JSON file plus
a scaling figure. The machine may be shared and its speed drifts: JAX and torch are timed in rounds,
back to back, the speedup is the median of the rounds' ratios, and the JSON records the load average
before and after.

FLOP count of one train step (`train_step_flops`), from the layer sizes only:
    forward  F = sum over layers l of 2 * B * T * 4H * (I_l + H)  +  2 * B * horizon * H * Q
             (per step and layer the input projection [B,I_l]x[I_l,4H] and the recurrent product
             [B,H]x[H,4H], one multiply-add = 2 FLOPs; then the Linear head on the horizon steps);
    step     3 * F (the backward pass costs about twice the forward: one product for the gradient
             with respect to the inputs and one for the weights).
Gate nonlinearities, embeddings, dropout, the loss and the optimiser update are elementwise and not
counted (about 30 FLOPs per hidden unit and step against 8 * (I + H) for the products, under 5% at
the saturating configuration), so achieved GFLOP/s is a slight underestimate of the work done.
"""

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from salesjax import train
from salesjax.config import Config, ModelConfig, TrainConfig, calendar_months
from salesjax.features import Windows, num_features, resolve_calendar

ROOT = Path(__file__).resolve().parents[1]
TORCH_SCRIPT = ROOT / "benchmarks" / "torch_lstm.py"
TORCH_VENV = ROOT / "benchmarks" / ".torch-venv"
TORCH_REQUIREMENT = "torch==2.13.0"
WINDOWS_PER_SERIES = 23  # training origins of the default data: 24 training months, origins 1..23
DEFAULT_SERIES = 800  # 20 stores x 40 categories in the default dataset


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchShape:
    """The sizes that fix one train step's cost; `features` is the width of `Windows.x`."""

    name: str
    features: int
    store_embedding: int
    category_embedding: int
    hidden: int
    num_layers: int
    context: int
    horizon: int
    quantiles: tuple[float, ...]
    dropout: float
    batch_size: int
    num_stores: int = 20
    num_categories: int = 40
    reference: str = "seasonal"  # model.reference: what the model's output is added to (a cost-free choice)
    level_smoothing: float = 0.0  # model.level_smoothing: how its windows are scaled (cost-free too)

    @property
    def input_size(self) -> int:
        """I_1: the first LSTM layer's input width (features plus both embeddings)."""
        return self.features + self.store_embedding + self.category_embedding

    @property
    def steps(self) -> int:
        """T: the sequence length."""
        return self.context + self.horizon

    def model_config(self) -> ModelConfig:
        """The ModelConfig of this shape."""
        return ModelConfig(
            context=self.context,
            horizon=self.horizon,
            reference=self.reference,
            level_smoothing=self.level_smoothing,
            combine="none",  # a train step never fits AutoETS
            hidden_size=self.hidden,
            num_layers=self.num_layers,
            dropout=self.dropout,
            store_embedding=self.store_embedding,
            category_embedding=self.category_embedding,
            quantiles=self.quantiles,
        )


def default_shape(cfg: Config) -> BenchShape:
    """The configuration of params.yaml (model and train.batch_size) on its calendar's features."""
    m = cfg.model
    calendar = resolve_calendar(*calendar_months(cfg), cfg.data.country, cfg.data.events)
    return BenchShape(
        name="default",
        features=num_features(len(calendar.columns())),
        store_embedding=m.store_embedding,
        category_embedding=m.category_embedding,
        hidden=m.hidden_size,
        num_layers=m.num_layers,
        context=m.context,
        horizon=m.horizon,
        quantiles=m.quantiles,
        dropout=m.dropout,
        batch_size=cfg.train.batch_size,
        reference=m.reference,
        level_smoothing=m.level_smoothing,
    )


# 2 layers x 64 units, sequence 24, batch 256, 10 input features (8 + 1 + 1 embedding), 12 outputs
# (12 horizon steps x the median).
SATURATED = BenchShape(
    name="saturated",
    features=8,
    store_embedding=1,
    category_embedding=1,
    hidden=64,
    num_layers=2,
    context=12,
    horizon=12,
    quantiles=(0.5,),
    dropout=0.2,
    batch_size=256,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchSettings:
    """What one run measures and how often; `for_mode` gives the quick and the full run."""

    shapes: tuple[BenchShape, BenchShape]  # (default, saturated)
    train: TrainConfig
    repeats: int  # timed JAX repeats per round (the median over all rounds is reported)
    rounds: int  # rounds of (JAX repeats, then torch) back to back; the speedup is the median round's
    steps_per_repeat: int
    epoch_series: int
    epoch_repeats: int
    scaling_series: tuple[int, ...]
    max_epoch_seconds: float  # beyond this an epoch is measured in part and extrapolated
    materialise_limit_mb: float  # larger window sets are streamed per batch
    matmul_size: int
    torch: bool  # False: skip PyTorch (reported as unavailable)
    torch_threads: tuple[int, ...]

    @classmethod
    def for_mode(cls, cfg: Config, quick: bool) -> "BenchSettings":
        """The quick (development) or full settings for the params in `cfg`."""
        cores = os.cpu_count() or 1
        return cls(
            shapes=(default_shape(cfg), SATURATED),
            train=cfg.train,
            repeats=3 if quick else 5,
            rounds=1 if quick else 3,
            steps_per_repeat=10 if quick else 30,
            epoch_series=DEFAULT_SERIES,
            epoch_repeats=1 if quick else 3,
            scaling_series=(400, 4_000) if quick else (400, 4_000, 40_000, 100_000),
            max_epoch_seconds=60.0 if quick else 300.0,
            materialise_limit_mb=512.0,
            matmul_size=2048,
            torch=True,
            torch_threads=tuple(sorted({1, 2, cores} - {0})) if cores > 1 else (1,),
        )


def train_step_flops(shape: BenchShape) -> float:
    """FLOPs of one train step: 3 x the forward matrix products (formula in the module docstring)."""
    b, t, h = shape.batch_size, shape.steps, shape.hidden
    widths = [shape.input_size] + [h] * (shape.num_layers - 1)
    lstm = sum(2 * b * t * 4 * h * (i + h) for i in widths)
    head = 2 * b * shape.horizon * h * len(shape.quantiles)
    return 3.0 * (lstm + head)


def random_windows(shape: BenchShape, n: int, rng: np.random.Generator) -> Windows:
    """n random windows of the model's shapes (x f32[n,T,F], ids, y and mask f32[n,horizon]; unit level)."""
    return Windows(
        x=rng.standard_normal((n, shape.steps, shape.features), np.float32),
        store=rng.integers(0, shape.num_stores, n, dtype=np.int32),
        category=rng.integers(0, shape.num_categories, n, dtype=np.int32),
        y=rng.standard_normal((n, shape.horizon), np.float32),
        mask=np.ones((n, shape.horizon), np.float32),
        series=np.arange(n, dtype=np.int32),
        level=np.ones(n, np.float32),
        reference=np.zeros((n, shape.horizon), np.float32),
    )


STREAM_CHUNK = 50  # steps per call when an epoch's windows are streamed


def streamed_chunks(shape: BenchShape, n: int, seed: int) -> Iterator[tuple[Windows, np.ndarray]]:
    """An epoch of n windows made a chunk of steps at a time: (Windows of S x B, valid f32[S,1,B]).

    Chunks hold `STREAM_CHUNK` steps (the last one fewer); the epoch's last batch is padded.
    """
    rng = np.random.default_rng(seed)
    step_size = STREAM_CHUNK * shape.batch_size
    for start in range(0, n, step_size):
        count = min(step_size, n - start)
        steps = -(-count // shape.batch_size)
        valid = np.zeros(steps * shape.batch_size, np.float32)
        valid[:count] = 1.0
        windows = random_windows(shape, steps * shape.batch_size, rng)
        yield windows, valid.reshape(steps, 1, shape.batch_size)


class EpochRunner:
    """The K=1 salesjax epoch program (`train.make_train_epoch`) with its state, placed as `train.fit` does.

    The state, the windows and each epoch's indices go onto `train.make_mesh(1)`: one device here,
    the batch split over N devices under XLA_FLAGS=--xla_force_host_platform_device_count=N.
    """

    def __init__(self, shape: BenchShape, tcfg: TrainConfig, seed: int = 0):
        """Initialise the model, optimiser and state of `shape` with `tcfg`'s optimiser settings."""
        tcfg = dataclasses.replace(tcfg, batch_size=shape.batch_size)
        sizes = (shape.features, shape.num_stores, shape.num_categories)
        graphdef, params = train.init_members(shape.model_config(), sizes, [seed])
        tx = train.make_optimizer(tcfg, 100_000)
        self.epoch = train.make_train_epoch(graphdef, tx, train.pinball_loss, shape.quantiles)
        opt_state = train.with_hypers(jax.vmap(tx.init)(params), [(tcfg.learning_rate, tcfg.weight_decay)])
        key = jnp.stack([jax.random.key(seed)])
        self.mesh = train.make_mesh(1)
        state = train.TrainState(jnp.zeros(1, jnp.int32), key, params, opt_state)
        self.state = self.place(state, P("member"))
        self.shape = shape
        self.rng = np.random.default_rng(seed)

    def place(self, tree, spec: P | None = None):
        """`tree` on the runner's mesh (as train.fit places it), replicated unless `spec` says otherwise."""
        return train.place(tree, self.mesh, P() if spec is None else spec)

    def __call__(self, windows: Windows, idx, valid) -> jax.Array:
        """S steps on windows[idx[s]] (idx i32[S,1,B], valid f32[S,1,B]) in one call; the losses f32[S,1]."""
        self.state, stats = self.epoch(self.state, windows, idx, valid)
        return stats["loss"]

    def epoch_indices(self, n: int, steps: int | None = None, seed: int = 0):
        """Device indices i32[S,1,B] and validity f32[S,1,B] of a shuffled epoch, as train.fit makes them.

        With `steps`: that many batches of indices drawn at random instead (for timing a number of steps).
        """
        b = self.shape.batch_size
        if steps is None:
            idx, valid = train.epoch_batches([np.random.default_rng(seed)], n, b)
        else:
            idx = self.rng.integers(0, n, (steps, 1, b), dtype=np.int32)
            valid = np.ones((steps, 1, b), np.float32)
        return self.place((idx, valid), P(None, "member", "data"))

    def seconds_per_step(self, windows: Windows, steps: int) -> float:
        """Wall seconds per step of one call running `steps` steps on random batches of placed `windows`."""
        idx, valid = self.epoch_indices(len(windows.y), steps)
        start = time.perf_counter()
        jax.block_until_ready(self(windows, idx, valid))
        return (time.perf_counter() - start) / steps


class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled from /proc every 5 ms.

    Falls back to `resource.getrusage` (the process's lifetime maximum) where /proc is missing.
    """

    def __enter__(self) -> "PeakRSS":
        """Start sampling."""
        self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        """Keep the maximum until stopped."""
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc) -> None:
        """Stop sampling and take one last sample."""
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def mb(self) -> float:
        """The peak in MiB."""
        return self.peak / 2**20


def _rss_bytes() -> int:
    """Current resident set size in bytes (lifetime maximum where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def step_times(runner: EpochRunner, windows: Windows, settings: BenchSettings) -> list[float]:
    """`settings.repeats` measurements of seconds per step, after a warm-up of one repeat."""
    runner.seconds_per_step(windows, settings.steps_per_repeat)
    return [runner.seconds_per_step(windows, settings.steps_per_repeat) for _ in range(settings.repeats)]


def materialised_epoch(runner: EpochRunner, windows: Windows, seed: int) -> float:
    """Seconds of one epoch as `train.fit` runs it: shuffled indices, every window once, losses fetched."""
    start = time.perf_counter()
    idx, valid = runner.epoch_indices(len(windows.y), seed=seed)
    np.asarray(jax.device_get(runner(windows, idx, valid)))
    return time.perf_counter() - start


def streamed_epoch(runner: EpochRunner, n: int, seed: int, max_seconds: float) -> tuple[float, int | None]:
    """Seconds of an epoch of n windows generated per chunk; (seconds, steps measured if extrapolated).

    Both chunk lengths are compiled before the clock starts. When the first chunk projects the epoch
    past `max_seconds`, only the chunks that fit are run and the time is extrapolated to the epoch.
    """
    b = runner.shape.batch_size
    total = -(-n // b)
    for steps in {min(total, STREAM_CHUNK), total % STREAM_CHUNK or STREAM_CHUNK}:
        windows = runner.place(random_windows(runner.shape, steps * b, runner.rng))
        jax.block_until_ready(runner(windows, *runner.epoch_indices(steps * b, steps)))
    start = time.perf_counter()
    done, limit = 0, total
    for windows, valid in streamed_chunks(runner.shape, n, seed):
        idx = np.arange(valid.size, dtype=np.int32).reshape(valid.shape)
        losses = runner(runner.place(windows), *runner.place((idx, valid), P(None, "member", "data")))
        done += valid.shape[0]
        if done == valid.shape[0]:  # after the first chunk: project the whole epoch
            jax.block_until_ready(losses)
            projected = (time.perf_counter() - start) / done * total
            limit = total if projected <= max_seconds else max(done, int(total * max_seconds / projected))
        if done >= limit:
            break
    jax.block_until_ready(losses)
    seconds = time.perf_counter() - start
    return (seconds, None) if done == total else (seconds / done * total, done)


def epoch_time(runner: EpochRunner, n_series: int, settings: BenchSettings, seed: int) -> dict:
    """Time and peak memory of one epoch over n_series x WINDOWS_PER_SERIES windows.

    Window sets under `settings.materialise_limit_mb` are made whole and put on the device, as
    `train.fit` does; larger ones are streamed batch by batch from a seeded generator.
    """
    n = n_series * WINDOWS_PER_SERIES
    shape = runner.shape
    window_mb = n * 4 * (shape.steps * shape.features + 2 * shape.horizon + 3) / 2**20
    baseline = _rss_bytes() / 2**20
    with PeakRSS() as rss:
        if window_mb <= settings.materialise_limit_mb:
            windows = runner.place(random_windows(shape, n, np.random.default_rng(seed)))
            materialised_epoch(runner, windows, seed)  # compiles for this size, warms up
            runs = [materialised_epoch(runner, windows, seed + r) for r in range(settings.epoch_repeats)]
            seconds, partial, mode = statistics.median(runs), None, "materialised"
            del windows
        else:
            seconds, partial = streamed_epoch(runner, n, seed, settings.max_epoch_seconds)
            mode = "streamed"
    return {
        "n_series": n_series,
        "n_windows": n,
        "seconds_per_epoch": float(f"{seconds:.4g}"),
        "peak_memory_mb": round(rss.mb, 1),
        "baseline_memory_mb": round(baseline, 1),
        "mode": mode,
        "extrapolated_from_steps": partial,
    }


def matmul_gflops(size: int, repeats: int) -> float:
    """Median GFLOP/s of a float32 [size,size] x [size,size] product under jax.jit (2 size^3 FLOPs)."""
    rng = np.random.default_rng(0)
    a, b = (jnp.asarray(rng.standard_normal((size, size), np.float32)) for _ in range(2))
    product = jax.jit(jnp.matmul)
    product(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def cpu_info() -> dict:
    """CPU model, cores, clock (MHz, as /proc/cpuinfo reports it) and the vector flags that matter."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(
        line.split(":", 1) for line in text.splitlines() if ":" in line and line.split(":", 1)[0].strip()
    )
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    return {
        "cpu_model": fields.get("model name", platform.processor() or "unknown"),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "mhz": float(fields["cpu MHz"]) if "cpu MHz" in fields else None,
        "vector_flags": sorted(flags & {"avx", "avx2", "fma", "avx512f"}),
    }


def theoretical_peak(info: dict) -> tuple[float | None, str]:
    """fp32 GFLOP/s = cores x clock x FLOPs per cycle per core, and the assumption it rests on.

    FLOPs per cycle assume two FMA pipes per core at the widest vector width the flags show (AVX-512:
    2 x 16 lanes x 2 = 64; AVX2+FMA: 2 x 8 x 2 = 32; otherwise SSE: 2 x 4 x 2 = 16 with no FMA = mul+add)
    and the clock /proc/cpuinfo reports (in a VM often the nominal clock: turbo can make the measured
    matrix-product rate exceed this figure).
    """
    flags = set(info["vector_flags"])
    if "avx512f" in flags:
        per_cycle, what = 64, "AVX-512: 2 FMA pipes x 16 fp32 lanes x 2 FLOPs"
    elif {"avx2", "fma"} <= flags:
        per_cycle, what = 32, "AVX2: 2 FMA pipes x 8 fp32 lanes x 2 FLOPs"
    else:
        per_cycle, what = 16, "SSE: 2 pipes x 4 fp32 lanes x 2 FLOPs"
    if not info["mhz"]:
        return None, f"{what}; no clock in /proc/cpuinfo"
    gflops = info["cores"] * info["mhz"] / 1e3 * per_cycle
    clock = f"{info['mhz'] / 1e3:.3f} GHz (/proc/cpuinfo 'cpu MHz')"
    note = f"{info['cores']} cores x {clock} x {per_cycle} ({what})"
    return gflops, note


def torch_python(venv: Path = TORCH_VENV) -> tuple[Path | None, str]:
    """The interpreter of a venv with a CPU torch, created on first use; (None, reason) when impossible."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import torch, numpy"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, "ok"
    base = getattr(sys, "_base_executable", None) or shutil.which("python3")
    steps = [
        [base, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", TORCH_REQUIREMENT, "numpy"],
        check,
    ]
    for command in steps:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{' '.join(map(str, command[:4]))}: {exc}"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"{' '.join(map(str, command[:4]))} failed: {tail[0]}"
    return python, "ok"


def jax_backend() -> str:
    """Where the JAX side runs: "cpu", or "gpu" when jax[cuda12] (`uv sync --extra cuda`) finds a GPU."""
    return jax.default_backend()


def torch_cuda(python: Path | None) -> tuple[bool, str]:
    """Whether the torch venv's torch sees a CUDA device, and a status line saying so or why not."""
    if python is None:
        return False, "skipped: torch not installed"
    probe = "import torch; print(torch.__version__, torch.cuda.is_available())"
    try:
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"skipped: torch did not start ({exc})"
    if done.returncode != 0:
        if "No module named 'torch'" in done.stderr:
            return False, "skipped: torch not installed"
        return False, f"skipped: torch failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}"
    version, available = done.stdout.split()[-2:]
    if available != "True":
        return False, f"skipped: torch {version} sees no CUDA device"
    return True, f"ok: torch {version} on CUDA"


def torch_throughput(
    python: Path, shape: BenchShape, settings: BenchSettings, n: int, device: str = "cpu"
) -> dict:
    """Run benchmarks/torch_lstm.py for `shape` in the torch venv; its JSON result (windows_per_s, ...)."""
    spec = {
        "device": device,
        "num_stores": shape.num_stores,
        "num_categories": shape.num_categories,
        "store_embedding": shape.store_embedding,
        "category_embedding": shape.category_embedding,
        "features": shape.features,
        "hidden": shape.hidden,
        "num_layers": shape.num_layers,
        "dropout": shape.dropout,
        "quantiles": list(shape.quantiles),
        "horizon": shape.horizon,
        "context": shape.context,
        "batch_size": shape.batch_size,
        "num_windows": n,
        "warmup": settings.steps_per_repeat,
        "steps": settings.steps_per_repeat,
        "repeats": settings.repeats,
        "threads": list(settings.torch_threads),
    }
    done = subprocess.run(
        [str(python), str(TORCH_SCRIPT), json.dumps(spec)], capture_output=True, text=True, timeout=1800
    )
    if done.returncode != 0:
        raise RuntimeError(f"torch benchmark failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compile_seconds(runner: EpochRunner, windows: Windows, steps: int) -> float:
    """Seconds to trace and XLA-compile the epoch program for `steps` steps (nothing run)."""
    idx, valid = runner.epoch_indices(len(windows.y), steps)
    start = time.perf_counter()
    runner.epoch.lower(runner.state, windows, idx, valid).compile()
    return time.perf_counter() - start


def throughput(shape: BenchShape, times: list[float], compile_s: float | None = None) -> dict:
    """Median seconds per step over `times` as windows/s and achieved GFLOP/s."""
    seconds = statistics.median(times)
    flops = train_step_flops(shape)
    return {
        "compile_seconds": compile_s,
        "seconds_per_step": seconds,
        "windows_per_s": shape.batch_size / seconds,
        "flops_per_step": flops,
        "gflops": flops / seconds / 1e9,
        "repeats": len(times),
    }


def torch_side(
    python: Path | None, shape: BenchShape, settings: BenchSettings, n: int, device: str = "cpu"
) -> dict | None:
    """torch's result at `shape`, or None (with the reason logged in the result) when it cannot run."""
    if python is None:
        return None
    try:
        return torch_throughput(python, shape, settings, n, device)
    except (RuntimeError, OSError, subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        return {"error": str(exc), "windows_per_s": None}


def paired_rounds(runner: EpochRunner, windows: Windows, python: Path | None, settings: BenchSettings):
    """`settings.rounds` rounds of JAX's step times, then torch's result, back to back (same load)."""
    rounds = []
    for _ in range(settings.rounds):
        times = step_times(runner, windows, settings)
        rounds.append((times, torch_side(python, runner.shape, settings, len(windows.y))))
    return rounds


def torch_over_rounds(rounds: list, batch_size: int) -> tuple[dict | None, list[float]]:
    """torch's result over the rounds (median windows/s; None when skipped) and each round's speedup.

    A round's speedup is JAX's windows/s (median of its repeats) over torch's in the same round.
    """
    results = [result for _, result in rounds]
    if results[0] is None:
        return None, []
    ok = [(times, r) for times, r in rounds if r.get("windows_per_s")]
    if not ok:
        return results[0], []  # carries the error
    speedups = [batch_size / statistics.median(times) / r["windows_per_s"] for times, r in ok]
    merged = {
        "torch_version": ok[0][1]["torch_version"],
        "windows_per_s": statistics.median(r["windows_per_s"] for _, r in ok),
        "rounds": results,
    }
    return merged, speedups


def _dvc_repro_seconds() -> float | None:
    """End-to-end `dvc repro` seconds from benchmarks/dvc_repro.json ({"seconds": S}) if someone timed it."""
    path = ROOT / "benchmarks" / "dvc_repro.json"
    try:
        return float(json.loads(path.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def machine(info: dict, torch_version: str | None) -> dict:
    """What the numbers were measured on."""
    import flax
    import optax

    return {
        "cpu_model": info["cpu_model"],
        "cores": info["cores"],
        "cpu_mhz": info["mhz"],
        "vector_flags": info["vector_flags"],
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "torch": torch_version,
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def plot_scaling(scaling: list[dict], path: Path) -> None:
    """Seconds per epoch (log-log) and peak / baseline RSS (linear) against the number of series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [s["n_series"] for s in scaling]
    fig, (time_ax, mem_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
    time_ax.loglog(n, [s["seconds_per_epoch"] for s in scaling], "o-")
    time_ax.set_ylabel("seconds per epoch")
    mem_ax.semilogx(n, [s["peak_memory_mb"] for s in scaling], "o-", label="peak during the epoch")
    mem_ax.semilogx(n, [s["baseline_memory_mb"] for s in scaling], "s--", label="before the epoch")
    mem_ax.set_ylim(0, 1.15 * max(s["peak_memory_mb"] for s in scaling))
    mem_ax.set_ylabel("process RSS (MiB)")
    mem_ax.legend(fontsize=8, loc="lower right")
    for ax, key in ((time_ax, "seconds_per_epoch"), (mem_ax, "peak_memory_mb")):
        for s in scaling:
            note = s["mode"][0] + ("*" if s["extrapolated_from_steps"] else "")
            ax.annotate(note, (s["n_series"], s[key]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("series (x23 windows)")
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("salesjax train epoch scaling (m: materialised, s: streamed, *: extrapolated)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def run_bench(quick: bool, out: Path, *, settings: BenchSettings | None = None) -> dict:
    """Measure everything, write `out` (JSON) and `<out stem>_scaling.png` beside it; return the report."""
    if settings is None:
        from salesjax.config import load_config

        settings = BenchSettings.for_mode(load_config(), quick)
    load_before = os.getloadavg()
    info = cpu_info()
    skipped = (None, "skipped: torch disabled for this run")
    python, torch_reason = torch_python() if settings.torch else skipped
    n = settings.epoch_series * WINDOWS_PER_SERIES
    sides = {}
    for shape in settings.shapes:
        runner = EpochRunner(shape, settings.train)
        windows = runner.place(random_windows(shape, n, np.random.default_rng(1)))
        compile_s = compile_seconds(runner, windows, settings.steps_per_repeat)
        rounds = paired_rounds(runner, windows, python, settings)
        times = [t for round_times, _ in rounds for t in round_times]
        sides[shape.name] = (
            throughput(shape, times, compile_s),
            *torch_over_rounds(rounds, shape.batch_size),
        )
        del windows
        if shape is settings.shapes[0]:
            epoch = epoch_time(runner, settings.epoch_series, settings, seed=2)
            scaling = [epoch_time(runner, s, settings, seed=3) for s in settings.scaling_series]
    peak = matmul_gflops(settings.matmul_size, settings.repeats)
    theoretical, assumption = theoretical_peak(info)
    (jd, td, speedups), (js, ts, speedups_saturated) = (sides[s.name] for s in settings.shapes)
    cuda_ok, cuda_status = torch_cuda(python) if python is not None else (False, torch_reason)
    cuda = {s.name: torch_side(python, s, settings, n, "cuda") for s in settings.shapes} if cuda_ok else {}
    torch_version = next((t.get("torch_version") for t in (td, ts) if t and "torch_version" in t), None)
    if python is not None and (td is None or td.get("windows_per_s") is None):
        torch_reason = (td or {}).get("error", "torch benchmark failed")
    report = {
        "mode": "quick" if quick else "full",
        "machine": machine(info, torch_version),
        "load_average_before": [round(x, 2) for x in load_before],
        "jax_windows_per_s": jd["windows_per_s"],
        "torch_windows_per_s": td["windows_per_s"] if td else None,
        "speedup_vs_torch": statistics.median(speedups) if speedups else None,
        "jax_windows_per_s_saturated": js["windows_per_s"],
        "torch_windows_per_s_saturated": ts["windows_per_s"] if ts else None,
        "speedup_vs_torch_saturated": statistics.median(speedups_saturated) if speedups_saturated else None,
        "speedup_rounds": {"default": speedups, "saturated": speedups_saturated},
        "torch_status": torch_reason,
        "jax_backend": jax_backend(),
        "torch_cuda_status": cuda_status,
        "torch_cuda_windows_per_s": (cuda.get("default") or {}).get("windows_per_s"),
        "torch_cuda_windows_per_s_saturated": (cuda.get("saturated") or {}).get("windows_per_s"),
        "gflops": js["gflops"],
        "gflops_default": jd["gflops"],
        "peak_gflops": peak,
        "theoretical_peak_gflops": theoretical,
        "theoretical_peak_assumption": assumption,
        "peak_fraction": js["gflops"] / peak,
        "compile_seconds": jd["compile_seconds"],
        "compile_seconds_saturated": js["compile_seconds"],
        "seconds_per_epoch": epoch["seconds_per_epoch"],
        "epoch": epoch,
        "dvc_repro_seconds": _dvc_repro_seconds(),
        "scaling": scaling,
        "peak_memory_method": (
            "process RSS: max of /proc/self/statm resident pages sampled every 5 ms during the epoch "
            "(baseline_memory_mb: RSS just before it, i.e. the JAX runtime and compiled programs)"
        ),
        "configs": {s.name: dataclasses.asdict(s) for s in settings.shapes},
        "jax": {"default": jd, "saturated": js},
        "torch": {"default": td, "saturated": ts},
        "torch_cuda": cuda or None,
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k not in ("shapes", "train")},
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    plot_scaling(scaling, out.with_name(out.stem + "_scaling.png"))
    return report


def summary(report: dict) -> str:
    """A few lines for the terminal: throughput against torch, peak fraction, epoch time and scaling."""

    def fmt(value, spec=".0f"):
        return "n/a" if value is None else format(value, spec)

    lines = [
        f"default:   jax {fmt(report['jax_windows_per_s'])} windows/s, torch "
        f"{fmt(report['torch_windows_per_s'])}, speedup {fmt(report['speedup_vs_torch'], '.2f')}",
        f"saturated: jax {fmt(report['jax_windows_per_s_saturated'])} windows/s, torch "
        f"{fmt(report['torch_windows_per_s_saturated'])}, speedup "
        f"{fmt(report['speedup_vs_torch_saturated'], '.2f')}",
        f"gflops {report['gflops']:.1f} of matmul peak {report['peak_gflops']:.1f} "
        f"({report['peak_fraction']:.1%}); theoretical {fmt(report['theoretical_peak_gflops'], '.1f')}",
        f"compile {report['compile_seconds']:.2f} s, epoch {report['seconds_per_epoch']:.2f} s",
        f"torch: {report['torch_status']}; JAX on {report['jax_backend']}; torch on CUDA: "
        f"{report['torch_cuda_status']}",
    ]
    lines += [
        f"  {s['n_series']:>7} series: {s['seconds_per_epoch']:8.2f} s/epoch, {s['peak_memory_mb']:8.1f} MiB"
        f" ({s['mode']}{', extrapolated' if s['extrapolated_from_steps'] else ''})"
        for s in report["scaling"]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Benchmark the train step (against PyTorch), the machine's peak, epoch time and scaling."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, 400 and 4,000 series only")
    parser.add_argument("--out", type=Path, default=Path("reports/benchmarks.json"), help="JSON to write")
    args = parser.parse_args(argv)
    print(summary(run_bench(args.quick, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
