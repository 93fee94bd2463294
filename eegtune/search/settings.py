"""What one search needs (:class:`SearchSettings`) and checking it before anything is created."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eegtune.errors import ConfigError, SearchError
from eegtune.names import (
    ACTIVATIONS,
    DEFAULT_OBJECTIVE,
    DEFAULT_PRUNER,
    DEFAULT_SAMPLER,
    LAB_DATASET,
    MAX_SEED,
    OBJECTIVES,
)
from eegtune.search.workers import heartbeat_interval

if TYPE_CHECKING:
    from eegtune.data.sources import DataSource
    from eegtune.search.study import StudyKeys

__all__ = ["MAX_SEED", "SearchSettings", "check_settings"]


@dataclass(frozen=True)
class SearchSettings:
    """Everything one ``eegtune search`` needs; picklable for worker processes."""

    model: str
    trials: int
    epochs: int = 300
    study_name: str | None = None
    storage: str | None = None
    space: str | None = None
    sampler: str = DEFAULT_SAMPLER
    pruner: str = DEFAULT_PRUNER
    seed: int = 0
    dataset: str = LAB_DATASET  # bci-iiib, synthetic, npz:DIR or moabb:NAME
    data_dir: str = "data"
    subjects: tuple[str, ...] = ()  # restrict the study to these subjects
    preprocessing: tuple[tuple[str, float | None], ...] = ()  # moabb: datasets only
    offline: bool | None = None
    device: str = "auto"
    val_fraction: float = 0.2
    split_seed: int = 0
    workers: int = 1
    timeout: float | None = None
    objective: str = DEFAULT_OBJECTIVE
    activation: str | None = None  # fixes the activation (a cell of `eegtune compare`)
    max_consecutive_failures: int = 5
    amp: bool = False

    @property
    def name(self) -> str:
        return self.study_name or self.model

    @property
    def source(self) -> DataSource:
        """The dataset, subjects and preprocessing, as the study remembers them."""
        from eegtune.data.sources import DataSource

        return DataSource(self.dataset, self.subjects, self.preprocessing)

    def study_keys(self) -> StudyKeys:
        """What the study must remember so that every worker and re-run does the same job."""
        from eegtune.search.study import StudyKeys

        return StudyKeys(
            self.model,
            self.dataset,
            self.split_seed,
            self.val_fraction,
            self.objective,
            list(self.subjects),
            dict(self.preprocessing),
        )


def check_settings(settings: SearchSettings) -> None:
    """Check everything about ``settings`` that needs neither data nor storage.

    Raises:
        SearchError, SpaceError, ConfigError, StudyError: one line saying what is wrong.
    """
    from eegtune.search.samplers import make_pruner, make_sampler
    from eegtune.search.space import load_space
    from eegtune.training import resolve_device

    if settings.trials < 1:
        raise SearchError(f"--trials must be at least 1, got {settings.trials}")
    if settings.workers < 1:
        raise SearchError(f"--workers must be at least 1, got {settings.workers}")
    if not 0 <= settings.seed <= MAX_SEED - settings.trials:  # trial seeds: seed + number
        raise ConfigError(
            f"--seed must lie in 0..{MAX_SEED - settings.trials} (each trial trains with "
            f"seed + its number, at most {MAX_SEED}), got {settings.seed}"
        )
    if settings.epochs < 1:
        raise SearchError(f"--epochs must be at least 1, got {settings.epochs}")
    if settings.objective not in OBJECTIVES:
        raise SearchError(
            f"unknown objective {settings.objective!r}; choose one of: {', '.join(OBJECTIVES)}"
        )
    if settings.activation is not None and settings.activation not in ACTIVATIONS:
        raise SearchError(
            f"unknown activation {settings.activation!r}; choose one of: {', '.join(ACTIVATIONS)}"
        )
    # built here, not only looked up: a sampler that cannot be made (gp without scipy) fails
    # before any study exists
    make_sampler(settings.sampler, settings.seed)
    make_pruner(settings.pruner, settings.epochs)
    load_space(settings.model, settings.space)
    resolve_device(settings.device)
    heartbeat_interval()  # a bad $EEGTUNE_HEARTBEAT_INTERVAL fails here, not in a worker
