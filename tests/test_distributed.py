"""Two processes joined by jax.distributed train what one process trains (JAX's runtime, gloo on CPU)."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import tiny_params
from test_train import tiny_windows

from salesjax import distributed, train
from salesjax.config import parse_config
from salesjax.errors import SalesjaxError

RUNS = {"data": [0], "members": [0, 1]}  # K=1: the batch split over 2 processes; K=2: one member each
SCRIPT = textwrap.dedent(
    f"""
    import sys
    from salesjax import distributed
    distributed.initialize()
    import jax, numpy as np
    from conftest import tiny_params
    from salesjax.config import parse_config
    from salesjax import train
    from test_train import tiny_windows
    from test_distributed import fit_kwargs

    assert (jax.process_count(), jax.device_count(), jax.local_device_count()) == (2, 2, 1)
    cfg = parse_config(tiny_params())
    windows, shapes = tiny_windows(cfg)
    out = {{}}
    for name, seeds in {RUNS!r}.items():
        assert train.make_mesh(len(seeds)).size == 2
        norms = []  # the stage's DVCLive callback runs in process 0 only
        on_epoch = (lambda epoch, m: norms.append(m["grad_norm"])) if distributed.is_main() else None
        kwargs = fit_kwargs(name, windows)
        fit = train.fit(cfg.model, cfg.train, windows, shapes, seeds, on_epoch=on_epoch, **kwargs)
        out |= {{f"{{name}}_{{i}}": x for i, x in enumerate(jax.tree.leaves(fit.params))}}
        out[f"{{name}}_epochs"] = fit.epochs
        out[f"{{name}}_grad_norm"] = np.array(norms)
    if distributed.is_main():
        np.savez(sys.argv[1], **out)
    """
)


def fit_kwargs(name, windows):
    """The data-parallel run refits for 2 epochs; the members run stops early on a hold-out."""
    if name == "data":
        return {"epochs": np.array([2])}
    return {"val": windows._replace(**{k: v[-20:] for k, v in windows._asdict().items()})}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_agree_with_one(tmp_path):
    env = os.environ | {
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "",
        distributed.COORDINATOR: f"127.0.0.1:{free_port()}",
        distributed.NUM_PROCESSES: "2",
    }
    out = tmp_path / "params.npz"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(out)],
            cwd=Path(__file__).parent,
            env=env | {distributed.PROCESS_ID: str(i)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    cfg = parse_config(tiny_params())  # the one-process runs, trained while the two processes start
    windows, shapes = tiny_windows(cfg)
    alone = {}
    for name, seeds in RUNS.items():
        seen = {}
        kwargs = fit_kwargs(name, windows)
        fit = train.fit(cfg.model, cfg.train, windows, shapes, seeds, on_epoch=seen.__setitem__, **kwargs)
        alone[name] = fit, np.array([m["grad_norm"] for m in seen.values()])  # each epoch's mean over steps
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-1500:] for e in errors)
    saved = np.load(out)
    for name, (fit, norms) in alone.items():
        np.testing.assert_array_equal(saved[f"{name}_epochs"], fit.epochs)
        np.testing.assert_allclose(saved[f"{name}_grad_norm"], norms, rtol=1e-4)
        for i, leaf in enumerate(jax.tree.leaves(fit.params)):
            np.testing.assert_allclose(saved[f"{name}_{i}"], leaf, rtol=1e-4, atol=1e-6)


def test_initialize_is_a_no_op_without_a_coordinator():
    distributed.initialize({})
    assert jax.process_count() == 1 and distributed.is_main()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({distributed.NUM_PROCESSES: "two", distributed.PROCESS_ID: "0"}, "SALESJAX_NUM_PROCESSES='two'"),
        ({distributed.NUM_PROCESSES: "2"}, "SALESJAX_PROCESS_ID=None"),
        ({distributed.NUM_PROCESSES: "2", distributed.PROCESS_ID: "2"}, "must lie in 0..1"),
        (
            {
                distributed.COORDINATOR: "localhost",
                distributed.NUM_PROCESSES: "2",
                distributed.PROCESS_ID: "1",
            },
            "expected host:port",
        ),
    ],
)
def test_initialize_names_a_bad_setting(env, message):
    env = {distributed.COORDINATOR: "127.0.0.1:1"} | env
    with pytest.raises(SalesjaxError, match=message.replace("(", r"\(").replace(".", r"\.")):
        distributed.initialize(env)


def test_process_zero_names_a_taken_port_instead_of_crashing():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {distributed.COORDINATOR: f"127.0.0.1:{port}", distributed.NUM_PROCESSES: "2"}
        with pytest.raises(SalesjaxError, match="the port is not free here"):
            distributed.initialize(env | {distributed.PROCESS_ID: "0"})
