"""Optimiser, the jit-compiled train step, the fit loop with early stopping, and seed ensembles.

Every fit trains K members at once: the state is a pytree with a leading member axis and the step is
`jax.vmap`-ed over it, so a seed ensemble is one compiled program and K=1 is the single model. Member
k uses seed `seeds[k]` for its initialisation, its shuffling and its dropout, which makes it equal to a
member trained alone with that seed.
"""

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm import tqdm

from salesjax import baselines, calibration, distributed
from salesjax.config import ModelConfig, TrainConfig
from salesjax.errors import SalesjaxError
from salesjax.features import (
    INDEX_FLOOR,
    SEASON,
    Scaler,
    Windows,
    make_windows,
    num_features,
    seasonal_profile,
)
from salesjax.model import Forecaster

logger = logging.getLogger(__name__)
EpochCallback = Callable[[int, dict[str, np.ndarray]], None]  # (epoch, name -> f32[K] per member)
# Windows per forward pass outside the train step (validation loss, predictions): the pass holds the input
# projections of every window, f32[K,T,N,4 hidden] (5 members x 60,000 hold-out windows at 10,000 series:
# 3.7 GB), so larger sets go through in chunks of this many; smaller ones (800 series: 4,800) in one pass.
EVAL_WINDOWS = 8192


class TrainState(NamedTuple):
    """One member's training state (stacked along axis 0 for an ensemble)."""

    step: jax.Array  # i32[]
    key: jax.Array  # PRNG key: dropout key of step t is fold_in(key, t)
    params: Any  # nnx.State of the model's parameters
    opt_state: Any


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What one fit returns: the kept parameters per member and the curves that chose them."""

    params: Any  # nnx.State of numpy arrays, leading axis K
    epochs: np.ndarray  # i32[K] epoch (1-based) whose parameters were kept
    train_loss: np.ndarray  # f32[E,K] mean training loss per epoch
    val_loss: np.ndarray | None  # f32[E,K] validation loss per epoch
    seconds: float  # wall time of the fit, compilation included


def pinball_loss(pred: jax.Array, y: jax.Array, mask: jax.Array, quantiles: jax.Array) -> jax.Array:
    """Mean pinball loss over masked cells and quantiles: max(q*e, (q-1)*e), e = y - pred.

    pred f32[B,H,Q] scaled, y f32[B,H] scaled, mask f32[B,H], quantiles f32[Q].
    """
    err = y[..., None] - pred
    loss = jnp.maximum(quantiles * err, (quantiles - 1.0) * err).mean(axis=-1)
    return (loss * mask).sum() / jnp.maximum(mask.sum(), 1.0)


def mse_loss(pred: jax.Array, y: jax.Array, mask: jax.Array, quantiles: jax.Array) -> jax.Array:
    """Mean squared error of the single output over masked cells (the thesis's loss)."""
    del quantiles
    return (jnp.square(y - pred[..., 0]) * mask).sum() / jnp.maximum(mask.sum(), 1.0)


LOSSES = {"pinball": pinball_loss, "mse": mse_loss}


def make_optimizer(cfg: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    """AdamW on a warm-up + cosine schedule, after clipping the global gradient norm.

    The peak learning rate and the weight decay are injected hyperparameters: they live in the
    optimiser state, so members of one vmapped program can each have their own (`with_hypers`).
    """
    shape = schedule_shape(cfg, total_steps)

    def adamw(learning_rate, weight_decay):
        return optax.chain(
            optax.clip_by_global_norm(cfg.clip_norm),
            optax.scale_by_adam(),
            optax.add_decayed_weights(weight_decay),
            optax.scale_by_schedule(lambda count: -learning_rate * shape(count)),
        )

    return optax.inject_hyperparams(adamw)(learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay)


def schedule_shape(cfg: TrainConfig, total_steps: int) -> optax.Schedule:
    """Step -> the learning rate as a fraction of its peak: linear warm-up from 0.1, cosine decay to 0.1."""
    warmup = min(cfg.warmup_steps, total_steps - 1)
    return optax.warmup_cosine_decay_schedule(0.1, 1.0, warmup, total_steps, 0.1)


def with_hypers(opt_state, hypers: list[tuple[float, float]]):
    """Stacked optimiser state with member k's (learning_rate, weight_decay) set to hypers[k]."""
    lr, wd = (jnp.asarray(v, jnp.float32) for v in zip(*hypers, strict=True))
    return opt_state._replace(hyperparams=opt_state.hyperparams | {"learning_rate": lr, "weight_decay": wd})


def make_train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, loss: Callable, quantiles):
    """Member-vmapped step: (state[K], windows, idx i32[K,B], valid f32[K,B]) -> (state, stats f32[K])."""
    q = jnp.asarray(quantiles, jnp.float32)

    def step(state: TrainState, windows: Windows, idx: jax.Array, valid: jax.Array):
        batch = jax.tree.map(lambda a: a[idx], windows)
        key = jax.random.fold_in(state.key, state.step)

        def objective(params):
            pred = nnx.merge(graphdef, params)(batch.x, batch.store, batch.category, key=key)
            return loss(pred, batch.y, batch.mask * valid[:, None], q)

        value, grads = jax.value_and_grad(objective)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        stats = {"loss": value, "grad_norm": optax.tree.norm(grads)}
        return TrainState(state.step + 1, state.key, params, opt_state), stats

    return jax.vmap(step, in_axes=(0, None, 0, 0))


def make_train_epoch(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, loss: Callable, quantiles):
    """Jitted epoch: (state[K], windows, idx i32[S,K,B], valid f32[S,K,B]) -> (state, stats f32[S,K]).

    The S steps run as one `lax.scan` over `make_train_step`, so an epoch is one dispatch: per-step
    Python and dispatch overhead, and XLA's per-call temporary buffers, are paid once per epoch.
    """
    step = make_train_step(graphdef, tx, loss, quantiles)

    @functools.partial(jax.jit, donate_argnums=0)
    def epoch(state: TrainState, windows: Windows, idx: jax.Array, valid: jax.Array):
        return jax.lax.scan(lambda state, batch: step(state, windows, *batch), state, (idx, valid))

    return epoch


def make_eval_loss(graphdef: nnx.GraphDef, loss: Callable, quantiles):
    """Jitted (params[K], windows) -> f32[K] loss of each member on all windows, no dropout."""
    q = jnp.asarray(quantiles, jnp.float32)

    def member(params, windows: Windows):
        pred = nnx.merge(graphdef, params)(windows.x, windows.store, windows.category)
        return loss(pred, windows.y, windows.mask, q)

    return jax.jit(jax.vmap(member, in_axes=(0, None)))


def window_chunks(windows: Windows, size: int | None = None) -> list[Windows]:
    """`windows` whole when it has at most `size` (default EVAL_WINDOWS), else consecutive chunks of `size`
    windows, the last one padded with zero windows (mask 0), so every chunk has one shape and one compile."""
    size = EVAL_WINDOWS if size is None else size
    n = len(windows.y)
    if n <= size:
        return [windows]
    chunks = [jax.tree.map(lambda a, i=i: a[i : i + size], windows) for i in range(0, n, size)]
    pad = size - len(chunks[-1].y)
    chunks[-1] = jax.tree.map(
        lambda a: np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]), chunks[-1]
    )
    return chunks


def chunked_loss(eval_loss: Callable, params: Any, chunks: list[Windows], cells: list[float]) -> np.ndarray:
    """f32[K] loss of each member over all `chunks` (`cells`: each chunk's mask sum): one chunk's loss as it
    is, else the chunks' losses weighted by their cells, so the mean is over every cell at once."""
    losses = [distributed.fetch(eval_loss(params, chunk)) for chunk in chunks]
    if len(losses) == 1:
        return losses[0]
    total = sum(np.float64(n) * loss for n, loss in zip(cells, losses, strict=True))
    return (total / max(sum(cells), 1.0)).astype(np.float32)


def make_predict(graphdef: nnx.GraphDef):
    """Jitted (params[K], x, store, category) -> f32[K,N,H,Q] scaled quantiles."""

    def member(params, x, store, category):
        return nnx.merge(graphdef, params)(x, store, category)

    return jax.jit(jax.vmap(member, in_axes=(0, None, None, None)))


def init_members(model_cfg: ModelConfig, shapes: tuple[int, int, int], seeds: list[int]):
    """(graphdef, params stacked over members) for models initialised from each seed."""
    models = [Forecaster(model_cfg, *shapes, rngs=nnx.Rngs(seed)) for seed in seeds]
    graphdef = nnx.graphdef(models[0])
    params = [nnx.state(m, nnx.Param) for m in models]
    return graphdef, jax.tree.map(lambda *leaves: jnp.stack(leaves), *params)


def make_mesh(members: int) -> Mesh:
    """All devices as a (member, data) mesh: members spread over devices if they divide, else the batch.

    On one CPU this is a 1 x 1 mesh and changes nothing; with N devices (GPUs, or host devices from
    XLA_FLAGS=--xla_force_host_platform_device_count=N) parameters are replicated and each device
    computes its slice of the batch or its members, and XLA inserts the reductions (data parallelism).
    """
    n = jax.device_count()
    per_member = math.gcd(members, n)
    return jax.make_mesh((per_member, n // per_member), ("member", "data"), axis_types=(AxisType.Auto,) * 2)


def place(tree, mesh: Mesh, spec: P):
    """device_put every leaf with the given partition spec on `mesh`, from host memory.

    Going through numpy lets one call serve a mesh over several processes' devices (each process
    holds the whole value and keeps its devices' share); PRNG keys travel as their key data.
    """
    sharding = NamedSharding(mesh, spec)

    def put(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        return jax.device_put(np.asarray(leaf), sharding)

    return jax.tree.map(put, tree)


def batch_size(cfg: TrainConfig, windows: int, devices: int = 1) -> int:
    """The batch of a fit on `windows` windows, a multiple of `devices`: train.batch_size, or fewer where
    an epoch would have fewer than train.min_steps_per_epoch steps, so that even a 10-series panel gets
    that many optimiser steps an epoch (a large panel keeps train.batch_size and has more).
    """
    if cfg.batch_size % devices:
        raise SalesjaxError(f"train.batch_size={cfg.batch_size} must divide over {devices} devices")
    batch = min(cfg.batch_size, -(-windows // cfg.min_steps_per_epoch))
    return -(-batch // devices) * devices


def epoch_batches(rngs: list[np.random.Generator], n: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-member shuffled indices i32[steps,K,B] and validity f32[steps,K,B] (the last batch padded)."""
    steps = -(-n // batch_size)
    idx = np.zeros((len(rngs), steps * batch_size), np.int32)
    valid = np.zeros(idx.shape, np.float32)
    for k, rng in enumerate(rngs):
        idx[k, :n] = rng.permutation(n)
        valid[k, :n] = 1.0
    shape = (len(rngs), steps, batch_size)
    return idx.reshape(shape).swapaxes(0, 1), valid.reshape(shape).swapaxes(0, 1)


def _check_finite(losses: np.ndarray, epoch: int, steps_per_epoch: int, seeds: list[int]) -> None:
    """Raise naming the first step and member whose loss is NaN or infinite. losses: f32[steps,K]."""
    bad = np.argwhere(~np.isfinite(losses))
    if len(bad):
        step, member = bad[0]
        global_step = (epoch - 1) * steps_per_epoch + int(step)
        raise SalesjaxError(
            f"training diverged: non-finite loss at step {global_step} (epoch {epoch}) of ensemble member "
            f"{member} (seed {seeds[member]}); lower train.learning_rate or check the input data"
        )


def _where_members(keep: np.ndarray, new, old):
    """Per member, `new` where keep[k] else `old` (pytrees with leading axis K)."""
    keep = jnp.asarray(keep)
    return jax.tree.map(lambda a, b: jnp.where(keep.reshape(-1, *[1] * (a.ndim - 1)), a, b), new, old)


def fit(
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    train: Windows,
    shapes: tuple[int, int, int],
    seeds: list[int],
    *,
    val: Windows | None = None,
    epochs: np.ndarray | None = None,
    hypers: list[tuple[float, float]] | None = None,
    label: str = "fit",
    mesh: Mesh | None = None,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    """Train members on `train` windows.

    With `val`: early stopping, each member keeps the parameters of its best validation epoch and
    stops counting after `cfg.patience` epochs without improvement. With `epochs` (i32[K]): each
    member keeps its parameters after exactly that many epochs (the refit). `shapes` is
    (num_features, num_stores, num_categories). `hypers` gives each member its own (learning rate,
    weight decay); by default all use the config's. `mesh` defaults to `make_mesh` over all devices.
    `on_epoch(epoch, metrics)` runs after each epoch (1-based) in every process, with f32[K] per
    member: train_loss and grad_norm (means over the epoch's steps, the norm before clipping),
    learning_rate (at the epoch's last step) and, with `val`, val_loss.
    """
    start = time.perf_counter()
    graphdef, params = init_members(model_cfg, shapes, seeds)
    mesh = mesh or make_mesh(len(seeds))
    batch = batch_size(cfg, len(train.y), mesh.shape["data"])
    steps_per_epoch = -(-len(train.y) // batch)
    max_epochs = cfg.max_epochs if epochs is None else int(np.max(epochs))
    total_steps = steps_per_epoch * max(max_epochs, 1)
    tx = make_optimizer(cfg, total_steps)
    hypers = hypers or [(cfg.learning_rate, cfg.weight_decay)] * len(seeds)
    peak, shape = np.asarray([lr for lr, _ in hypers], np.float32), schedule_shape(cfg, total_steps)
    loss = LOSSES[cfg.loss]
    train_epoch = make_train_epoch(graphdef, tx, loss, model_cfg.quantiles)
    eval_loss = make_eval_loss(graphdef, loss, model_cfg.quantiles) if val is not None else None
    keys = jnp.stack([jax.random.key(s) for s in seeds])
    opt_state = with_hypers(jax.vmap(tx.init)(params), hypers)
    state = place(TrainState(jnp.zeros(len(seeds), jnp.int32), keys, params, opt_state), mesh, P("member"))
    kept = jax.tree.map(jnp.copy, state.params)
    rngs = [np.random.default_rng(s) for s in seeds]
    train_dev = place(train, mesh, P())
    val_chunks = [] if val is None else window_chunks(val)
    val_cells = [float(chunk.mask.sum()) for chunk in val_chunks]
    val_chunks = [place(chunk, mesh, P()) for chunk in val_chunks]
    best = np.full(len(seeds), np.inf)
    since_best = np.zeros(len(seeds), np.int32)
    kept_epoch = np.zeros(len(seeds), np.int32)
    train_curve, val_curve = [], []
    quiet = not logger.isEnabledFor(logging.INFO)
    bar = tqdm(range(1, max_epochs + 1), desc=label, leave=False, dynamic_ncols=True, disable=quiet)
    for epoch in bar:
        idx, valid = place(epoch_batches(rngs, len(train.y), batch), mesh, P(None, "member", "data"))
        state, stats = train_epoch(state, train_dev, idx, valid)
        stats = distributed.fetch(stats)
        _check_finite(stats["loss"], epoch, steps_per_epoch, seeds)
        metrics = {"train_loss": stats["loss"].mean(axis=0)}
        train_curve.append(metrics["train_loss"])
        if eval_loss is not None:
            val_losses = metrics["val_loss"] = chunked_loss(eval_loss, state.params, val_chunks, val_cells)
            val_curve.append(val_losses)
            active = since_best < cfg.patience
            keep = active & (val_losses < best)
            best = np.where(keep, val_losses, best)
            since_best = np.where(keep, 0, since_best + 1)
            bar.set_postfix(loss=f"{train_curve[-1].mean():.4f}", val=f"{val_losses.mean():.4f}")
        else:
            keep = epochs == epoch
            bar.set_postfix(loss=f"{train_curve[-1].mean():.4f}")
        kept = _where_members(keep, state.params, kept)
        kept_epoch = np.where(keep, epoch, kept_epoch)
        if on_epoch is not None:
            lr = peak * np.float32(shape(epoch * steps_per_epoch - 1))  # the step counter starts at 0
            on_epoch(epoch, metrics | {"grad_norm": stats["grad_norm"].mean(axis=0), "learning_rate": lr})
        if eval_loss is not None and not np.any(since_best < cfg.patience):
            break
    params = distributed.fetch(kept)
    seconds = time.perf_counter() - start
    logger.debug(f"{label}: {len(seeds)} member(s), {len(train_curve)} epochs in {seconds:.1f} s")
    return FitResult(
        params=params,
        epochs=kept_epoch,
        train_loss=np.asarray(train_curve, np.float32),
        val_loss=np.asarray(val_curve, np.float32) if val_curve else None,
        seconds=seconds,
    )


def _model_windows(
    history,
    available,
    calendar,
    scaler,
    store,
    category,
    model_cfg: ModelConfig,
    origins,
    *,
    training=True,
    covariates=None,
) -> Windows:
    """`make_windows` at the model's context and horizon; `training` is its `require_target`."""
    shape = {"context": model_cfg.context, "horizon": model_cfg.horizon, "require_target": training}
    shape |= {"smoothing": model_cfg.level_smoothing}
    return make_windows(
        history, available, calendar, scaler, store, category, origins, **shape, covariates=covariates
    )


def training_covariates(covariates: np.ndarray | None, context: int, months: int) -> np.ndarray | None:
    """f[S,months,C]: the first `months` history months of padded covariates (`pad_covariates`)."""
    return None if covariates is None else covariates[:, context : context + months]


def validation_windows(
    history: np.ndarray,
    available: np.ndarray,
    calendar: np.ndarray,
    store: np.ndarray,
    category: np.ndarray,
    model_cfg: ModelConfig,
    hold: int,
    covariates: np.ndarray | None = None,
) -> tuple[Windows, Windows]:
    """(fit, hold-out) windows of the early-stopping fit: the last `hold` training months are held out.

    history f64[S,Th] revenue and available bool[S,Th] of the training months only; the last `hold`
    months are the hold-out, and the scaler is fitted on the months before them (their covariates too).
    """
    th = history.shape[1]
    before, before_available = history[:, : th - hold], available[:, : th - hold]
    known = training_covariates(covariates, model_cfg.context, th - hold)
    scaler = Scaler.fit(before, before_available, model_cfg.reference, known)
    common = (calendar, scaler, store, category, model_cfg)
    fit_windows = _model_windows(
        before, before_available, *common, np.arange(1, th - hold), covariates=covariates
    )
    hold_out = _model_windows(history, available, *common, np.arange(th - hold, th), covariates=covariates)
    return fit_windows, hold_out


@dataclasses.dataclass(frozen=True)
class Trained:
    """A trained forecaster: parameters of K members, the scaler they expect, and how they were chosen."""

    params: Any  # nnx.State, leading axis K
    scaler: Scaler
    validation: FitResult  # the early-stopping fit on the training months before the hold-out
    refit: FitResult  # the final fit on all training months, each member for its chosen epochs
    calibration: dict[str, list[float]]  # `holdout_calibration`: upper level -> offsets, WEIGHT -> [weight]


class Prediction(NamedTuple):
    """Forecasts of K members for every series from one origin."""

    values: np.ndarray  # f64[K,S,H,Q] revenue quantiles, >= 0
    unit: np.ndarray  # f64[S] each series' window level (revenue), the unit of its intervals
    reference: np.ndarray  # f64[S,H] the reference forecast (revenue, >= 0): level x reference
    ets: np.ndarray | None = None  # f64[S,H] AutoETS's point forecast from the same months (`model.combine`)


def predict_windows(graphdef: nnx.GraphDef, params: Any, windows: Windows) -> np.ndarray:
    """f64[K,N,H,Q] revenue quantiles (>= 0) of each member: level x (reference + output).

    The windows go through in chunks of EVAL_WINDOWS (`window_chunks`), so memory does not grow with N.
    """
    predict = make_predict(graphdef)
    parts = [jax.device_get(predict(params, c.x, c.store, c.category)) for c in window_chunks(windows)]
    out = np.concatenate(parts, axis=1)[:, : len(windows.y)].astype(np.float64)
    return np.clip(windows.level[:, None, None] * (windows.reference[..., None] + out), 0.0, None)


def holdout_calibration(
    graphdef: nnx.GraphDef,
    params: Any,
    history,
    available,
    calendar,
    store,
    category,
    model_cfg,
    hold: int,
    covariates=None,
) -> dict[str, list[float]]:
    """The weight of the network against its reference, the weight of that blend against AutoETS
    (`model.combine: ets`), and upper-level interval offsets, from the early-stopping fit's forecasts of
    the hold-out months (`salesjax.calibration`).

    The fit (`params`) learned from the months before the hold-out; it forecasts from every origin in the
    hold-out (rolling), its member-mean median is the network's point, and only hold-out months are scored.
    The weight is chosen first, and the offsets are those of the weighted point. It stays 1 with
    `reference: mean`, whose reference is no forecast, and when the months before the hold-out hold no
    season (`Scaler.seasonal_seen`): the early-stopping fit then forecasts from the level, so the hold-out
    cannot judge the seasonal reference that the refit forecasts from. AutoETS, fitted once on the
    months before the hold-out, forecasts the hold-out from its first origin, and the blend's weight
    against it is chosen on that origin's forecasts (the offsets stay those of the blend). It fits its own
    season where those months are at least `calibration.ETS_MIN_MONTHS`, else the profile's
    (`ets_forecast`); the calibration keeps which (`calibration.ETS_SEASON`) for the forecasts.
    """
    th = history.shape[1]
    known = training_covariates(covariates, model_cfg.context, th - hold)
    scaler = Scaler.fit(history[:, : th - hold], available[:, : th - hold], model_cfg.reference, known)
    origins = np.arange(th - hold, th)
    data = (history, available, calendar, scaler, store, category, model_cfg, origins)
    windows = _model_windows(*data, training=False, covariates=covariates)
    point = predict_windows(graphdef, params, windows).mean(axis=0)[..., model_cfg.quantiles.index(0.5)]
    actual = windows.level[:, None] * (windows.y + windows.reference)
    unit = np.broadcast_to(windows.level[:, None], point.shape)
    reference = windows.reference_revenue()
    grid = (len(store), len(origins), model_cfg.horizon)
    point, actual, unit, reference, mask = (
        a.reshape(grid) for a in (point, actual, unit, reference, windows.mask > 0)
    )
    judged = model_cfg.reference != "mean" and scaler.seasonal_seen
    weight = calibration.choose_weight(point, reference, actual, unit, mask) if judged else 1.0
    point = calibration.blend(point, reference, weight)
    offsets = calibration.level_offsets(point, actual, unit, mask, store, category, model_cfg.quantiles)
    offsets[calibration.WEIGHT] = [weight]
    if model_cfg.combine == "ets":
        steps = min(hold, model_cfg.horizon)
        season = SEASON if th - hold >= calibration.ETS_MIN_MONTHS else 1
        ets = ets_forecast(history[:, : th - hold], available[:, : th - hold], steps, season)
        blend, truth, scale, cells = (a[:, 0, :steps] for a in (point, actual, unit, mask))
        offsets[calibration.ETS_WEIGHT] = [calibration.choose_weight(blend, ets, truth, scale, cells)]
        offsets[calibration.ETS_SEASON] = [float(season)]
    return offsets


def ets_forecast(history: np.ndarray, available: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """f64[S,H] AutoETS's point forecast (revenue, >= 0) for the combination (`model.combine: ets`).

    With `season` SEASON, AutoETS fits the season itself (`baselines.ets_point`). With 1, it is fitted
    without one to each series divided by its seasonal profile (`features.seasonal_profile` at the
    origin, 1 where a month has none), and its forecast is multiplied by the profile ahead: the
    deseasonalised ETS of the classical decomposition methods, for histories too short for AutoETS's
    own season.
    """
    if season > 1:
        return baselines.ets_point(history, available, horizon, season)
    t = history.shape[1]
    index, seen = seasonal_profile(history, available, np.array([t]), np.arange(-t, horizon))
    index = np.where(seen & (index > INDEX_FLOOR), index, 1.0)[:, 0]
    level = baselines.ets_point(history / index[:, :t], available, horizon, 1)
    return np.clip(level * index[:, t:], 0.0, None)


def ets_season(offsets: dict[str, list[float]]) -> int | None:
    """The season length of the AutoETS that a calibration weighs (`ets_forecast`), None if none."""
    return int(offsets[calibration.ETS_SEASON][0]) if calibration.ETS_WEIGHT in offsets else None


def train_forecaster(
    history: np.ndarray,
    available: np.ndarray,
    calendar: np.ndarray,
    store: np.ndarray,
    category: np.ndarray,
    num_ids: tuple[int, int],
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    seeds: list[int],
    on_epoch: EpochCallback | None = None,
    covariates: np.ndarray | None = None,
) -> Trained:
    """Choose the epochs on a hold-out inside the training months, then refit on all of them.

    The last `validation_months` training months are held out: the early-stopping fit learns from
    targets before them, and is scored on every window whose origin lies in them (rolling origins,
    targets in the hold-out only). The test months are never passed in.

    history f64[S,Th] revenue of the training months only (nothing later is passed in), available
    bool[S,Th], calendar f32[context + Th + horizon, Fc] aligned as in `make_windows`. `on_epoch`
    watches the early-stopping fit (see `fit`); the refit repeats its chosen epochs and is not watched.
    `covariates` f[S,context + Th + horizon,C] are aligned with the calendar (`features.pad_covariates`);
    their standardisation is fitted on the training months like the scaler.
    """
    th, hold = history.shape[1], cfg.validation_months
    if th - hold < 2:
        raise SalesjaxError(f"{th} training months leave too few for train.validation_months={hold}")
    n_covariates = 0 if covariates is None else covariates.shape[-1]
    shapes = (num_features(calendar.shape[1], n_covariates), *num_ids)
    inputs = (history, available, calendar, store, category, model_cfg, hold, covariates)
    fit_windows, hold_out = validation_windows(*inputs)
    validation = fit(
        model_cfg, cfg, fit_windows, shapes, seeds, val=hold_out, label="validation fit", on_epoch=on_epoch
    )
    known = training_covariates(covariates, model_cfg.context, th)
    scaler = Scaler.fit(history, available, model_cfg.reference, known)
    data = (history, available, calendar, scaler, store, category, model_cfg, np.arange(1, th))
    all_windows = _model_windows(*data, covariates=covariates)
    refit = fit(model_cfg, cfg, all_windows, shapes, seeds, epochs=validation.epochs, label="refit")
    offsets = {}
    if len(model_cfg.quantiles) > 1:  # a point forecast alone has no interval to calibrate
        graphdef, _ = init_members(model_cfg, shapes, seeds[:1])
        offsets = holdout_calibration(graphdef, validation.params, *inputs)
    return Trained(refit.params, scaler, validation, refit, offsets)


def forecast(
    graphdef: nnx.GraphDef,
    params: Any,
    scaler: Scaler,
    history: np.ndarray,
    available: np.ndarray,
    calendar: np.ndarray,
    store: np.ndarray,
    category: np.ndarray,
    model_cfg: ModelConfig,
    covariates: np.ndarray | None = None,
    ets_season: int | None = None,
) -> Prediction:
    """Each member's revenue quantiles for the `horizon` months right after `history` (f64[S,Th]), with
    the reference and, with `ets_season` (of a calibration that weighs AutoETS, `ets_season`), AutoETS
    fitted on the same months (`ets_forecast`).

    `covariates` f[S,context + Th + horizon,C] are aligned with `calendar` (`features.pad_covariates`).
    """
    origin = np.array([history.shape[1]])
    data = (history, available, calendar, scaler, store, category, model_cfg, origin)
    windows = _model_windows(*data, training=False, covariates=covariates)
    reference = windows.reference_revenue()
    values = predict_windows(graphdef, params, windows)
    fitted = None if ets_season is None else ets_forecast(history, available, model_cfg.horizon, ets_season)
    return Prediction(values, windows.level.astype(np.float64), reference, fitted)
