"""One training loop for every command: ``fit()``.

The whole dataset lives as tensors on the training device: batches are index selections on
the device, never host-to-device copies, and no DataLoader workers are involved. Losses and
accuracies are accumulated on the device and read once per epoch. Evaluation runs in large
batches under ``torch.inference_mode``.
"""

from __future__ import annotations

import contextlib
import math
import random
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from eegtune import signals
from eegtune.errors import ConfigError
from eegtune.models.networks import Dropout, build_model

if TYPE_CHECKING:
    from eegtune.data.dataset import ModelShape

__all__ = [
    "EpochCallback",
    "EpochRecord",
    "FitResult",
    "evaluate_accuracy",
    "fit",
    "predict",
    "mean_record",
    "train_configuration",
    "train_folds",
    "set_seed",
]

Status = Literal["completed", "stopped", "diverged"]
EVAL_BATCH = 1024


@dataclass(frozen=True)
class EpochRecord:
    """Metrics of one epoch. Accuracies are fractions in [0, 1]; val_* are None without a
    validation set. ``train_acc`` is the running accuracy over the epoch's batches."""

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float | None
    val_acc: float | None
    seconds: float


@dataclass
class FitResult:
    """Outcome of :func:`fit`."""

    status: Status
    history: list[EpochRecord] = field(default_factory=list)
    device: str = "cpu"
    seconds: float = 0.0
    message: str = ""

    @property
    def best_epoch(self) -> int | None:
        """1-based epoch with the highest validation accuracy (the first one on ties)."""
        scored = [r for r in self.history if r.val_acc is not None]
        if not scored:
            return self.history[-1].epoch if self.history else None
        return max(scored, key=lambda r: (r.val_acc, -r.epoch)).epoch

    @property
    def best_val_acc(self) -> float | None:
        scored = [r.val_acc for r in self.history if r.val_acc is not None]
        return max(scored) if scored else None

    def smoothed_best(self, window: int = 3) -> tuple[float, int] | None:
        """The best mean validation accuracy over ``window`` consecutive epochs, and the last
        epoch of that window (the first on ties); None without validation epochs.

        Less noisy than :attr:`best_val_acc`: one lucky epoch on a small validation split
        does not make a trial the winner. Early epochs average over the epochs so far.
        """
        values = [r.val_acc for r in self.history if r.val_acc is not None]
        if not values:
            return None
        means = [
            sum(values[max(0, i - window + 1) : i + 1])
            / len(values[max(0, i - window + 1) : i + 1])
            for i in range(len(values))
        ]
        best = max(range(len(means)), key=lambda i: (means[i], -i))
        return means[best], best + 1

    def score(self, objective: str) -> tuple[float | None, int | None]:
        """A trial's value under ``objective`` (``smoothed`` or ``best``) and the epoch it
        points at (how long ``evaluate`` retrains the configuration)."""
        if objective == "smoothed":
            best = self.smoothed_best()
            return (best[0], best[1]) if best is not None else (None, self.best_epoch)
        return self.best_val_acc, self.best_epoch

    def score_at(self, objective: str, epoch: int, window: int = 3) -> float | None:
        """This run's score under ``objective`` at ``epoch`` (another run's chosen epoch, as
        a fold's value at the fold-mean's epoch): the validation accuracy of that epoch, or
        for ``smoothed`` the mean over the ``window`` epochs that end there."""
        values = [r.val_acc for r in self.history[:epoch] if r.val_acc is not None]
        if not values:
            return None
        if objective == "smoothed":
            return statistics.fmean(values[-window:])
        return values[-1]

    def history_dicts(self) -> list[dict[str, float | int | None]]:
        return [asdict(r) for r in self.history]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _as_tensors(
    x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    xt = torch.as_tensor(x, dtype=torch.float32).to(device)
    yt = torch.as_tensor(y, dtype=torch.int64).to(device)
    return xt.contiguous(memory_format=torch.channels_last), yt


@torch.inference_mode()
def _evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH
) -> tuple[float, float]:
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size])
        target = y[start : start + batch_size]
        loss_sum += nn.functional.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(dim=1) == target).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return float(loss_sum) / n, int(correct) / n


def evaluate_accuracy(
    model: nn.Module,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    device: torch.device | str = "cpu",
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy (fraction) of ``model`` on (x, y), in eval mode."""
    device = torch.device(device)
    model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    xt, yt = _as_tensors(x, y, device)
    return _evaluate(model, xt, yt)


@torch.inference_mode()
def predict(
    model: nn.Module, x: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Predicted class of each input, in eval mode, as a NumPy array."""
    device = torch.device(device)
    model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    xt = torch.as_tensor(x, dtype=torch.float32).to(device)
    xt = xt.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    out = [model(xt[i : i + EVAL_BATCH]).argmax(dim=1) for i in range(0, len(xt), EVAL_BATCH)]
    model.train(was_training)
    return torch.cat(out).cpu().numpy()


def _autocast(device: torch.device, enabled: bool) -> Callable[[], Any]:
    """A factory of bfloat16 autocast contexts for ``device`` (no-op contexts when disabled)."""
    if not enabled:
        return contextlib.nullcontext
    if device.type == "cpu" and not torch.backends.mkldnn.is_available():
        raise ConfigError("--amp on CPU needs a torch build with oneDNN; drop --amp")
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters: a third of the for-loop
    version's time on an EEGNet step) where this torch build has one for the device."""
    params = list(model.parameters())
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # torch < 2.4 has no fused CPU Adam
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


EpochCallback = Callable[[EpochRecord], object]
"""Called after every epoch; a truthy return value stops the run (status ``stopped``)."""


def fit(
    model: nn.Module,
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    x_val: np.ndarray | torch.Tensor | None = None,
    y_val: np.ndarray | torch.Tensor | None = None,
    *,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    callback: EpochCallback | None = None,
    amp: bool = False,
) -> FitResult:
    """Train ``model`` with Adam and cross-entropy, in place.

    Args:
        model: The network; moved to ``device`` in channels-last layout.
        x_train, y_train: Training inputs (N, 1, C, T) and integer labels.
        x_val, y_val: Optional validation set, evaluated after every epoch.
        epochs: Number of epochs (the maximum when ``callback`` may stop early).
        lr, batch_size, weight_decay: Optimiser settings (Adam's L2 weight decay).
        seed: Seeds shuffling and dropout; the same seed on CPU gives the same run.
        device: Training device. ``fit`` changes nothing process-wide: call
            :func:`configure_process` once first for cuDNN autotuning or the CPU allocator.
        callback: Called after each epoch; returning a truthy value stops training.
        amp: Run forward passes under bfloat16 autocast (CUDA, or a CPU with bf16 support such
            as AVX-512 BF16/AMX); weights and optimiser state stay float32.

    Returns:
        A :class:`FitResult`; ``status`` is ``diverged`` when the loss became non-finite.
    """
    if epochs < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    device = torch.device(device)
    # The run owns its randomness: one CPU generator seeded with ``seed`` shuffles and draws
    # eegtune's dropout masks. Layers that only know torch's default generators (the stock
    # nn.Dropout, the fused CUDA kernel) draw from them inside a fork, seeded the same way, so
    # the caller's random state is the same after fit() as before: nothing process-wide.
    runs = _fit_runs(
        [model], [(x_train, y_train, x_val, y_val)], epochs=epochs, lr=lr,
        batch_size=batch_size, weight_decay=weight_decay, seed=seed, device=device,
        callback=callback, amp=amp,
    )  # fmt: skip
    return runs[0]


Arrays = tuple[
    np.ndarray | torch.Tensor,
    np.ndarray | torch.Tensor,
    np.ndarray | torch.Tensor | None,
    np.ndarray | torch.Tensor | None,
]
"""Training inputs and labels, validation inputs and labels (None: no validation)."""


def mean_record(records: list[EpochRecord]) -> EpochRecord:
    """One epoch of several runs trained in lockstep: the mean of each metric (None where
    any run has no validation set), the seconds summed."""

    def mean(values: list[float | None]) -> float | None:
        if any(v is None for v in values):
            return None
        return statistics.fmean(v for v in values if v is not None)

    return EpochRecord(
        epoch=records[0].epoch,
        train_loss=statistics.fmean(r.train_loss for r in records),
        train_acc=statistics.fmean(r.train_acc for r in records),
        val_loss=mean([r.val_loss for r in records]),
        val_acc=mean([r.val_acc for r in records]),
        seconds=sum(r.seconds for r in records),
    )


def _fit_runs(
    models: list[nn.Module],
    data: list[Arrays],
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    seed: int,
    device: torch.device,
    callback: EpochCallback | None,
    amp: bool,
) -> list[FitResult]:
    """Train each model on its own data, all of them one epoch at a time (lockstep);
    ``callback`` sees the mean of each epoch's records and can stop them all."""
    # Each run owns its randomness: one CPU generator seeded with ``seed`` shuffles and
    # draws eegtune's dropout masks. Layers that only know torch's default generators (the
    # stock nn.Dropout, the fused CUDA kernel) draw from them inside a fork, seeded the same
    # way, so the caller's random state is the same after fit() as before.
    cuda = [device.index or 0] if device.type == "cuda" else []
    generators = [torch.Generator(device="cpu").manual_seed(seed) for _ in models]
    dropouts = [
        (layer, rng)
        for model, rng in zip(models, generators, strict=True)
        for layer in model.modules()
        if isinstance(layer, Dropout)
    ]
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for layer, rng in dropouts:
            layer.generator = rng
        try:
            runs = [
                _Run(
                    model,
                    *arrays,
                    lr=lr,
                    batch_size=batch_size,
                    weight_decay=weight_decay,
                    rng=rng,
                    device=device,
                    amp=amp,
                )  # fmt: skip
                for model, arrays, rng in zip(models, data, generators, strict=True)
            ]
            return _lockstep(runs, epochs, callback)
        finally:
            for layer, _ in dropouts:
                layer.generator = None  # the models keep no reference to the run


def _lockstep(runs: list[_Run], epochs: int, callback: EpochCallback | None) -> list[FitResult]:
    results = [FitResult(status="completed", device=str(run.device)) for run in runs]
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        signals.check()  # a stop signal that a finaliser swallowed still stops training
        records: list[EpochRecord] = []
        for index, run in enumerate(runs):
            record = run.epoch(epoch)
            if isinstance(record, str):
                which = f" (fold {index + 1})" if len(runs) > 1 else ""
                for result in results:
                    result.status, result.message = "diverged", record + which
                records = []
                break
            records.append(record)
        if not records:
            break
        for result, record in zip(results, records, strict=True):
            result.history.append(record)
        if callback is not None and callback(mean_record(records)):
            for result in results:
                result.status = "stopped"
                result.message = f"stopped by callback after epoch {epoch}"
            break
    for result in results:
        result.seconds = time.perf_counter() - started
    return results


class _Run:
    """One model's training state: its data on the device, its optimiser and generator."""

    def __init__(
        self,
        model: nn.Module,
        x_train: np.ndarray | torch.Tensor,
        y_train: np.ndarray | torch.Tensor,
        x_val: np.ndarray | torch.Tensor | None,
        y_val: np.ndarray | torch.Tensor | None,
        *,
        lr: float,
        batch_size: int,
        weight_decay: float,
        rng: torch.Generator,
        device: torch.device,
        amp: bool,
    ) -> None:
        self.autocast = _autocast(device, amp)
        self.model = model.to(device=device, memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model.train()
        self.xt, self.yt = _as_tensors(x_train, y_train, device)
        self.val = (
            _as_tensors(x_val, y_val, device) if x_val is not None and y_val is not None else None
        )
        self.optimizer = _adam(self.model, lr=lr, weight_decay=weight_decay)
        self.batch_size, self.rng, self.device = batch_size, rng, device

    def epoch(self, epoch: int) -> EpochRecord | str:
        """Train one epoch and validate; the reason instead when the loss became non-finite."""
        model, optimizer, device = self.model, self.optimizer, self.device
        t0 = time.perf_counter()
        n = len(self.xt)
        order = torch.randperm(n, generator=self.rng).to(device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            xb, yb = self.xt[idx], self.yt[idx]
            with self.autocast():
                logits = model(xb)
                loss = nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(dim=1) == yb).sum()
        train_loss = float(loss_sum) / n
        if not math.isfinite(train_loss):
            return f"training loss became non-finite ({train_loss}) in epoch {epoch}"
        with self.autocast():
            scored = _evaluate(model, *self.val) if self.val is not None else (None, None)
        val_loss, val_acc = scored
        return EpochRecord(
            epoch=epoch,
            train_loss=train_loss,
            train_acc=int(correct) / n,
            val_loss=val_loss,
            val_acc=val_acc,
            seconds=time.perf_counter() - t0,
        )


def train_configuration(
    model_name: str,
    params: Mapping[str, Any],
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    x_val: np.ndarray | torch.Tensor | None = None,
    y_val: np.ndarray | torch.Tensor | None = None,
    *,
    shape: ModelShape,
    epochs: int,
    seed: int,
    device: torch.device | str = "cpu",
    callback: EpochCallback | None = None,
    amp: bool = False,
    on_model: Callable[[nn.Module], object] | None = None,
) -> tuple[nn.Module, FitResult]:
    """Train one configuration: the recipe of ``train``, every search trial and ``evaluate``.

    Builds network ``model_name`` with the ``activation`` and ``dropout`` of ``params``, its
    initial weights drawn from ``seed`` (in a fork of torch's generator: nothing process-wide
    changes), calls ``on_model`` with it (to count parameters, say), then :func:`fit` with the
    ``lr``, ``batch_size`` and ``weight_decay`` of ``params`` and the same seed.

    Returns:
        The trained network and the :class:`FitResult`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(model_name, params["activation"], params["dropout"], **shape)
    if on_model is not None:
        on_model(model)
    result = fit(
        model, x_train, y_train, x_val, y_val, epochs=epochs, lr=params["lr"],
        batch_size=params["batch_size"], weight_decay=params["weight_decay"], seed=seed,
        device=device, callback=callback, amp=amp,
    )  # fmt: skip
    return model, result


def train_folds(
    model_name: str,
    params: Mapping[str, Any],
    folds: list[Arrays],
    *,
    shape: ModelShape,
    epochs: int,
    seed: int,
    device: torch.device | str = "cpu",
    callback: EpochCallback | None = None,
    amp: bool = False,
    on_model: Callable[[nn.Module], object] | None = None,
) -> tuple[list[FitResult], FitResult]:
    """Train one configuration on each fold, all folds in lockstep, epoch by epoch.

    Every fold's network starts from the same initial weights (drawn from ``seed``, as in
    :func:`train_configuration`), so folds differ only in their data. ``callback`` sees each
    epoch's fold-mean record, and stopping it stops every fold (a pruned trial).

    Returns:
        Each fold's :class:`FitResult`, and one whose history is the fold-mean of each epoch
        (what a trial's score and best epoch come from).
    """
    device = torch.device(device)
    models = []
    for _ in folds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            models.append(build_model(model_name, params["activation"], params["dropout"], **shape))
    if on_model is not None:
        on_model(models[0])
    results = _fit_runs(
        models, folds, epochs=epochs, lr=params["lr"], batch_size=params["batch_size"],
        weight_decay=params["weight_decay"], seed=seed, device=device, callback=callback,
        amp=amp,
    )  # fmt: skip
    first = results[0]
    mean = FitResult(
        status=first.status,
        history=[
            mean_record(list(epoch)) for epoch in zip(*(r.history for r in results), strict=True)
        ],
        device=first.device,
        seconds=first.seconds,
        message=first.message,
    )
    return results, mean
