"""The benchmark's pieces that can be wrong: the FLOP formula, epoch coverage, the report's keys."""

import dataclasses
import json
import sys
import time
from pathlib import Path

import bench
import jax.numpy as jnp
import numpy as np
import pytest


def tiny_shape(name: str, num_layers: int) -> bench.BenchShape:
    """A model small enough to compile in about a second."""
    return bench.BenchShape(
        name=name,
        features=3,
        store_embedding=1,
        category_embedding=1,
        hidden=4,
        num_layers=num_layers,
        context=3,
        horizon=2,
        quantiles=(0.1, 0.5, 0.9),
        dropout=0.2,
        batch_size=8,
        num_stores=3,
        num_categories=2,
    )


class CountingRunner:
    """Stands in for EpochRunner (same epoch indices, no device): counts the steps and windows it is given."""

    epoch_indices = bench.EpochRunner.epoch_indices

    def __init__(self, shape: bench.BenchShape, delay: float = 0.0):
        self.shape, self.delay, self.steps, self.valid, self.seen = shape, delay, 0, 0.0, []
        self.rng = np.random.default_rng(0)
        self.timed = False

    def place(self, tree, spec=None):
        return tree

    def __call__(self, windows, idx, valid):
        idx, valid = np.asarray(idx), np.asarray(valid)
        assert idx.shape == valid.shape and idx.shape[1:] == (1, self.shape.batch_size)
        assert windows.x.shape[1:] == (self.shape.steps, self.shape.features)
        time.sleep(self.delay * len(idx))
        self.steps += len(idx)
        self.valid += float(valid.sum())
        self.seen += list(idx[valid > 0])
        return jnp.zeros((len(idx), 1))


def test_flops_match_a_hand_count():
    """B=2, T=3, I=3 (1+1+1), H=2, two layers, horizon 1, Q=1, counted by hand."""
    shape = dataclasses.replace(
        tiny_shape("t", 2), features=1, hidden=2, context=2, horizon=1, quantiles=(0.5,), batch_size=2
    )
    # per sample and step: layer 1 2*3*8 + 2*2*8 = 80, layer 2 2*2*8 + 2*2*8 = 64; x B*T = 6
    forward = (80 + 64) * 6 + 2 * 2 * 1 * 2 * 1  # + head 2*B*horizon*H*Q
    assert bench.train_step_flops(shape) == 3 * forward == 2616


def test_streamed_chunks_cover_n_windows_with_a_padded_last_batch():
    shape = tiny_shape("t", 1)
    n = bench.STREAM_CHUNK * 8 + 19  # one whole chunk, then 3 steps: 8, 8, 3 windows
    chunks = list(bench.streamed_chunks(shape, n, seed=0))
    assert [v.shape for _, v in chunks] == [(bench.STREAM_CHUNK, 1, 8), (3, 1, 8)]
    assert float(chunks[0][1].sum()) == bench.STREAM_CHUNK * 8
    assert chunks[1][1][:, 0].sum(axis=1).tolist() == [8.0, 8.0, 3.0]
    assert all(w.x.shape == (v.size, shape.steps, shape.features) for w, v in chunks)


def test_streamed_epoch_runs_every_step_when_it_fits():
    runner = CountingRunner(tiny_shape("t", 1))
    n = bench.STREAM_CHUNK * 8 + 19
    seconds, partial = bench.streamed_epoch(runner, n, seed=0, max_seconds=60.0)
    warm_up = bench.STREAM_CHUNK + 3  # both chunk lengths, run once before the clock starts
    assert (runner.steps - warm_up, runner.valid - warm_up * 8, partial) == (bench.STREAM_CHUNK + 3, n, None)
    assert seconds > 0


def test_streamed_epoch_extrapolates_from_the_steps_it_ran():
    runner = CountingRunner(tiny_shape("t", 1), delay=0.001)
    total = 8 * bench.STREAM_CHUNK
    seconds, partial = bench.streamed_epoch(runner, total * 8, seed=0, max_seconds=0.15)
    assert partial is not None and bench.STREAM_CHUNK <= partial < total
    assert partial % bench.STREAM_CHUNK == 0  # whole chunks
    assert runner.steps - bench.STREAM_CHUNK == partial  # after the warm-up chunk
    assert seconds >= 0.001 * total * 0.9  # extrapolated to the whole epoch, not the part run


def test_materialised_epoch_visits_each_window_once():
    shape = tiny_shape("t", 1)
    windows = bench.random_windows(shape, 19, np.random.default_rng(0))
    runner = CountingRunner(shape)
    bench.materialised_epoch(runner, windows, seed=0)
    assert sorted(int(i) for i in runner.seen) == list(range(19))


def test_run_bench_writes_every_key_without_torch(tmp_path, config):
    settings = bench.BenchSettings(
        shapes=(tiny_shape("default", 1), tiny_shape("saturated", 2)),
        train=config.train,
        repeats=2,
        rounds=2,
        steps_per_repeat=2,
        epoch_series=2,
        epoch_repeats=1,
        scaling_series=(2, 4),
        max_epoch_seconds=60.0,
        materialise_limit_mb=0.005,  # 2 series (~0.004 MB) materialised, 4 streamed
        matmul_size=64,
        torch=False,
        torch_threads=(1,),
    )
    out = tmp_path / "reports" / "benchmarks.json"
    report = bench.run_bench(True, out, settings=settings)
    written = json.loads(out.read_text())
    for key in [
        "machine", "jax_windows_per_s", "torch_windows_per_s", "speedup_vs_torch",
        "jax_windows_per_s_saturated", "torch_windows_per_s_saturated", "speedup_vs_torch_saturated",
        "gflops", "peak_gflops", "theoretical_peak_gflops", "peak_fraction", "compile_seconds",
        "seconds_per_epoch", "scaling",
    ]:  # fmt: skip
        assert key in written, key
    assert written["torch_windows_per_s"] is None and written["speedup_vs_torch"] is None
    assert "skipped" in written["torch_status"]
    assert written["jax_backend"] == "cpu" and written["machine"]["jax_devices"]
    assert written["torch_cuda_status"].startswith("skipped") and written["torch_cuda"] is None
    assert written["jax_windows_per_s"] > 0 and written["peak_gflops"] > 0
    assert written["peak_fraction"] == pytest.approx(written["gflops"] / written["peak_gflops"])
    assert [s["n_series"] for s in written["scaling"]] == [2, 4]
    assert [s["mode"] for s in written["scaling"]] == ["materialised", "streamed"]
    assert all(s["seconds_per_epoch"] > 0 and s["peak_memory_mb"] > 0 for s in written["scaling"])
    assert (out.parent / "benchmarks_scaling.png").stat().st_size > 0
    assert "default:" in bench.summary(report)


def test_speedup_pairs_each_jax_round_with_the_torch_round_after_it():
    # B=100: JAX at 1 ms/step is 100,000 windows/s; torch 50,000 then 200,000 (a slower, then faster machine)
    rounds = [([0.001, 0.001, 0.003], {"torch_version": "t", "windows_per_s": 50_000.0})]
    rounds += [([0.0005, 0.0005], {"torch_version": "t", "windows_per_s": 200_000.0})]
    rounds += [([0.001], {"error": "torch benchmark failed: boom", "windows_per_s": None})]
    merged, speedups = bench.torch_over_rounds(rounds, batch_size=100)
    assert speedups == pytest.approx([2.0, 1.0])  # the failed round is left out
    assert merged["windows_per_s"] == pytest.approx(125_000.0) and len(merged["rounds"]) == 3
    assert bench.torch_over_rounds([([0.001], None)], 100) == (None, [])
    failed = {"error": "boom", "windows_per_s": None}
    assert bench.torch_over_rounds([([0.001], failed)], 100) == (failed, [])


def test_theoretical_peak_states_its_assumption():
    info = {"cores": 2, "mhz": 2500.0, "vector_flags": ["avx", "avx2", "avx512f", "fma"]}
    gflops, note = bench.theoretical_peak(info)
    assert gflops == pytest.approx(2 * 2.5 * 64)
    assert "AVX-512" in note and "2 cores" in note


def test_the_jax_side_runs_on_the_cpu_here():
    assert bench.jax_backend() == "cpu"


FAKE_TORCH = {
    "missing": "raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n",
    "cpu": "__version__ = '9.9+cpu'\nclass cuda:\n    is_available = staticmethod(lambda: False)\n",
    "cuda": "__version__ = '9.9+cu129'\nclass cuda:\n    is_available = staticmethod(lambda: True)\n",
}


@pytest.mark.parametrize(
    ("torch", "expected"),
    [
        ("missing", (False, "skipped: torch not installed")),
        ("cpu", (False, "skipped: torch 9.9+cpu sees no CUDA device")),
        ("cuda", (True, "ok: torch 9.9+cu129 on CUDA")),
    ],
)
def test_torch_on_cuda_is_a_status_never_a_crash(tmp_path, monkeypatch, torch, expected):
    """A stand-in `torch` module on the probe's path: missing, CPU-only, or seeing a GPU."""
    (tmp_path / "torch.py").write_text(FAKE_TORCH[torch])
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    assert bench.torch_cuda(Path(sys.executable)) == expected
    assert bench.torch_cuda(None) == (False, "skipped: torch not installed")
