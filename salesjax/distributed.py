"""Multi-process (multi-host) training on JAX's own runtime: `jax.distributed.initialize`.

Every process runs the same command on the same data. `train.make_mesh` then spans the devices of
all processes; `train.fit` places the batch (or the ensemble members) across them, each process
computes its devices' share, and XLA inserts the cross-process reductions (JAX's default gloo
collectives on CPUs, NCCL on GPUs). Results come back to every process with `fetch`; only process 0
writes files.

Environment, read by `salesjax train` and `salesjax sweep`:
    SALESJAX_COORDINATOR=host:port   process 0's address, the same for every process
    SALESJAX_NUM_PROCESSES=N         how many processes take part
    SALESJAX_PROCESS_ID=i            this process, 0 .. N-1
or SALESJAX_COORDINATOR=auto on a cluster JAX recognises itself (SLURM, Open MPI, ...). Unset, the
run is one process and nothing here does anything.
"""

import os
import socket
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from salesjax.errors import SalesjaxError

COORDINATOR, NUM_PROCESSES, PROCESS_ID = (
    "SALESJAX_COORDINATOR",
    "SALESJAX_NUM_PROCESSES",
    "SALESJAX_PROCESS_ID",
)


def _integer(env: Mapping[str, str], name: str) -> int:
    """An integer environment variable, or a one-line error naming it."""
    value = env.get(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SalesjaxError(f"{name}={value!r}: expected an integer (set with {COORDINATOR})") from None


def _require_free_port(coordinator: str) -> None:
    """Process 0 serves the coordinator: one line naming a taken port (JAX itself would crash on it)."""
    with socket.socket() as probe:
        try:
            probe.bind(("", int(coordinator.rpartition(":")[2])))
        except OSError as exc:
            raise SalesjaxError(
                f"{COORDINATOR}={coordinator}: the port is not free here ({exc.strerror})"
            ) from None


def initialize(env: Mapping[str, str] = os.environ) -> None:
    """Join the processes named by the environment (module docstring); a no-op when it names none."""
    coordinator = env.get(COORDINATOR)
    if not coordinator:
        return
    if coordinator == "auto":
        where = {}
    else:
        count, index = _integer(env, NUM_PROCESSES), _integer(env, PROCESS_ID)
        if count < 1 or not 0 <= index < count:
            raise SalesjaxError(f"{PROCESS_ID}={index} must lie in 0..{count - 1} ({NUM_PROCESSES}={count})")
        if not coordinator.rpartition(":")[2].isdigit():
            raise SalesjaxError(f"{COORDINATOR}={coordinator!r}: expected host:port or auto")
        if index == 0:
            _require_free_port(coordinator)
        where = {"coordinator_address": coordinator, "num_processes": count, "process_id": index}
    jax.distributed.initialize(**where)


def fetch(tree: Any) -> Any:
    """Every leaf as a numpy array holding its whole (global) value, in every process."""
    if jax.process_count() == 1:
        return jax.tree.map(np.asarray, jax.device_get(tree))
    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


def is_main() -> bool:
    """True in the process that writes files (process 0; the only process of a single-process run)."""
    return jax.process_index() == 0
