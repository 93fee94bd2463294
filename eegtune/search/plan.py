"""One search, checked once: :func:`plan_search` turns a request into a frozen
:class:`SearchPlan`, and everything below it (the run, its workers, each trial) takes the plan as
it is: nothing re-validates, nothing resolves the space, the device or the sampler again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from eegtune.data.sources import DataSource, parse_source
from eegtune.device import resolve_device
from eegtune.errors import ConfigError, SearchError
from eegtune.names import (
    ACTIVATIONS,
    DEFAULT_FOLDS,
    DEFAULT_OBJECTIVE,
    DEFAULT_PORTFOLIO,
    DEFAULT_PRUNER,
    DEFAULT_SAMPLER,
    DEFAULT_STOP_WHEN_FLAT,
    HOLDOUT_MIN_VAL,
    LAB_DATASET,
    MAX_FOLDS,
    MAX_SEED,
    OBJECTIVES,
    SMALL_DATA_FOLDS,
)
from eegtune.search.samplers import make_pruner, make_sampler
from eegtune.search.space import SearchSpace, load_space
from eegtune.search.study import StudySpec
from eegtune.search.workers import heartbeat_interval, worker_device

if TYPE_CHECKING:
    import numpy as np
    import optuna

    from eegtune.data.dataset import Dataset

__all__ = ["SearchPlan", "plan_search", "sized_folds"]


@dataclass(frozen=True)
class SearchPlan:
    """Everything one search needs, validated; picklable for worker processes.

    ``sampler`` and ``pruner`` make a fresh sampler or pruner (each worker needs its own);
    both were built once while the plan was made, so neither can fail later.
    """

    spec: StudySpec
    study_name: str
    trials: int
    epochs: int
    space: SearchSpace  # the model's preset and --space file, with a fixed activation applied
    space_file: str | None
    sampler: Callable[[], optuna.samplers.BaseSampler]
    pruner: Callable[[], optuna.pruners.BasePruner]
    sampler_name: str
    pruner_name: str
    seed: int
    device: str  # resolved: cpu, cuda or cuda:N
    spread_gpus: bool  # --device auto: worker i takes GPU i mod the GPU count
    storage: str | None
    data_dir: str = "data"
    offline: bool | None = None
    workers: int = 1
    timeout: float | None = None
    activation: str | None = None  # fixes the activation (a cell of `eegtune compare`)
    max_consecutive_failures: int = 5
    amp: bool = False
    explicit: frozenset[str] = frozenset()  # spec keys the user gave (split, objective)
    portfolio: bool = DEFAULT_PORTFOLIO  # a new study starts from the network's portfolio
    stop_when_flat: bool = DEFAULT_STOP_WHEN_FLAT  # stop once gains fall below a score's noise

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def name(self) -> str:
        return self.study_name

    @property
    def source(self) -> DataSource:
        return self.spec.source

    def sized_for(self, data_set: Dataset) -> SearchPlan:
        """This plan with the scoring sized to the training set (:func:`sized_folds`) unless
        ``--folds`` was given; an existing study still keeps the scoring it was made with."""
        if "folds" in self.explicit:
            return self
        folds = sized_folds(data_set.y_train, self.spec.val_fraction)
        return replace(self, spec=replace(self.spec, folds=folds))

    def sizing_note(self, data_set: Dataset) -> str:
        """A ``note:`` when a new study on ``data_set`` is scored on folds because a hold-out
        would hold too few trials (``""`` otherwise, and when ``--folds`` was given)."""
        folds = self.sized_for(data_set).spec.folds
        if folds == self.spec.folds:
            return ""
        n_val = round(len(data_set.y_train) * self.spec.val_fraction)
        cost = (folds - 1) / (1 - self.spec.val_fraction)  # K-1 training sets vs one of 80%
        return (
            f"note: a new study on these {len(data_set.y_train)} training trials is scored on "
            f"{folds} stratified folds: a {self.spec.val_fraction:.0%} hold-out would hold "
            f"{n_val}, fewer than {HOLDOUT_MIN_VAL} (an epoch costs about {cost:.0f}x a "
            "hold-out's; --folds 1 for one hold-out)"
        )

    def worker_device(self, index: int) -> str:
        """The device of worker ``index`` (see :func:`eegtune.search.workers.worker_device`)."""
        return worker_device("auto" if self.spread_gpus else self.device, index)


def sized_folds(labels: np.ndarray, val_fraction: float) -> int:
    """The default scoring of a new study on training labels ``labels``: one hold-out while it
    holds at least :data:`~eegtune.names.HOLDOUT_MIN_VAL` trials, else
    :data:`~eegtune.names.SMALL_DATA_FOLDS` stratified folds (fewer when the smallest class has
    fewer trials; a hold-out when not even 2 folds fit)."""
    import numpy as np

    if round(len(labels) * val_fraction) >= HOLDOUT_MIN_VAL:
        return DEFAULT_FOLDS
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    smallest = int(counts[counts > 0].min()) if len(labels) else 0
    folds = min(SMALL_DATA_FOLDS, smallest)
    return folds if folds >= 2 else DEFAULT_FOLDS


def dataset_label(dataset: str) -> str:
    """A short name of a dataset for study names: ``synthetic``, the folder of ``npz:DIR``,
    the name of ``moabb:NAME``."""
    kind, sep, target = dataset.partition(":")
    if not sep:
        return dataset
    return Path(target).name if kind == "npz" else target


def default_study_name(model: str, source: DataSource) -> str:
    """``eegnet`` on the lab's data, ``eegnet-synthetic`` (``eegnet-my_eeg`` for
    ``npz:my_eeg``) on any other, so that a search on new data never lands in another's study."""
    if source.dataset == LAB_DATASET:
        return model
    return f"{model}-{dataset_label(source.dataset)}"


def plan_search(
    model: str,
    trials: int,
    *,
    epochs: int = 300,
    study_name: str | None = None,
    storage: str | None = None,
    space: str | None = None,
    sampler: str = DEFAULT_SAMPLER,
    pruner: str = DEFAULT_PRUNER,
    seed: int = 0,
    dataset: DataSource | str = LAB_DATASET,
    data_dir: str = "data",
    offline: bool | None = None,
    device: str = "auto",
    val_fraction: float | None = None,
    split_seed: int | None = None,
    workers: int = 1,
    timeout: float | None = None,
    objective: str | None = None,
    folds: int | None = None,
    activation: str | None = None,
    max_consecutive_failures: int = 5,
    amp: bool = False,
    portfolio: bool = DEFAULT_PORTFOLIO,
    stop_when_flat: bool = DEFAULT_STOP_WHEN_FLAT,
) -> SearchPlan:
    """Check a search request and resolve it into a :class:`SearchPlan`.

    Needs neither data nor storage, so a bad command fails before any download or write.
    ``dataset`` is a parsed :class:`~eegtune.data.sources.DataSource` or a ``--dataset`` value.
    The study name defaults to :func:`default_study_name`. ``val_fraction`` (default 0.2),
    ``split_seed`` (0) and ``objective`` (:data:`~eegtune.names.DEFAULT_OBJECTIVE`) given
    explicitly must agree with an existing study's, and so must ``folds`` (default
    :data:`~eegtune.names.DEFAULT_FOLDS`; 1 scores on one hold-out of ``val_fraction``); left
    out, the study's own are used, and a new study's scoring is sized to its data
    (:meth:`SearchPlan.sized_for`). ``portfolio`` starts a new study from the network's
    portfolio; ``stop_when_flat`` ends it once the improvement still to expect is below the
    noise of a score (:mod:`eegtune.search.stopping`).

    Raises:
        SearchError, SpaceError, ConfigError, StudyError: one line saying what is wrong.
    """
    if trials < 1:
        raise SearchError(f"--trials must be at least 1, got {trials}")
    if workers < 1:
        raise SearchError(f"--workers must be at least 1, got {workers}")
    if not 0 <= seed <= MAX_SEED - trials:  # trial seeds: seed + number
        raise ConfigError(
            f"--seed must lie in 0..{MAX_SEED - trials} (each trial trains with seed + its "
            f"number, at most {MAX_SEED}), got {seed}"
        )
    if epochs < 1:
        raise SearchError(f"--epochs must be at least 1, got {epochs}")
    given = {"val_fraction": val_fraction, "split_seed": split_seed, "objective": objective,
             "folds": folds}  # fmt: skip
    explicit = frozenset(key for key, value in given.items() if value is not None)
    val_fraction = 0.2 if val_fraction is None else val_fraction
    split_seed = 0 if split_seed is None else split_seed
    objective = DEFAULT_OBJECTIVE if objective is None else objective
    folds = DEFAULT_FOLDS if folds is None else folds
    if not 1 <= folds <= MAX_FOLDS:
        raise SearchError(
            f"--folds must lie in 1..{MAX_FOLDS} (1: one hold-out of --val-fraction), got {folds}"
        )
    if not 0 < val_fraction < 1:
        raise SearchError(f"--val-fraction must lie strictly between 0 and 1, got {val_fraction}")
    if objective not in OBJECTIVES:
        raise SearchError(
            f"unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}"
        )
    if activation is not None and activation not in ACTIVATIONS:
        raise SearchError(
            f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}"
        )
    # built here, not only looked up: a sampler that cannot be made (gp without scipy) fails
    # before any study exists
    make_sampler(sampler, seed, trials)
    make_pruner(pruner, epochs)
    resolved = load_space(model, space).fixing("activation", activation)
    heartbeat_interval()  # a bad $EEGTUNE_HEARTBEAT_INTERVAL fails here, not in a worker
    source = dataset if isinstance(dataset, DataSource) else parse_source(dataset)
    return SearchPlan(
        spec=StudySpec(model, source, split_seed, val_fraction, objective, folds=folds),
        study_name=study_name or default_study_name(model, source),
        trials=trials,
        epochs=epochs,
        space=resolved,
        space_file=space,
        sampler=partial(make_sampler, sampler, seed, trials),
        pruner=partial(make_pruner, pruner, epochs),
        sampler_name=sampler,
        pruner_name=pruner,
        seed=seed,
        device=str(resolve_device(device)),
        spread_gpus=device.strip().lower() == "auto",
        storage=storage,
        data_dir=data_dir,
        offline=offline,
        workers=workers,
        timeout=timeout,
        activation=activation,
        max_consecutive_failures=max_consecutive_failures,
        amp=amp,
        explicit=explicit,
        portfolio=portfolio,
        stop_when_flat=stop_when_flat,
    )
