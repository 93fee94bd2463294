"""Samplers and pruners by registered name (see :mod:`eegtune.names`).

Every sampler draws each trial from its own seeded stream, so that parallel workers and
re-runs never replay each other. Pruners are sized by the most epochs a trial trains, and can
tell when they will next look at a running trial (for the live view).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from eegtune.errors import StudyError
from eegtune.names import PRUNERS, SAMPLERS

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "classic_tpe_sampler",
    "cmaes_sampler",
    "gp_sampler",
    "hyperband_pruner",
    "make_pruner",
    "make_sampler",
    "median_pruner",
    "next_pruning_check",
    "no_pruner",
    "patient_pruner",
    "random_sampler",
    "sampling_note",
    "startup_trials",
    "tpe_sampler",
    "trial_seed",
]


STARTUP_SHARE = 4
"""TPE samples the first quarter of a study's target at random ..."""
STARTUP_MIN = 3
"""... but at least this many (a model of fewer points is noise) ..."""
STARTUP_MAX = 5
"""... and at most as many as the space has parameters (EEGNet's and DeepConvNet's 5): past
that, random points add little to the model's first density, and a 40-trial study models 35
of them. Optuna's own default is 10 whatever the target (``tpe-classic``)."""


def startup_trials(target: int | None) -> int:
    """Random trials before TPE models the scores, sized to the study's target (``None``: an
    unknown target, the most). Portfolio and baseline trials count among them: TPE counts
    every finished trial. Measured by benchmarks/budget.py (BENCHMARKS.md "Time to quality")."""
    if target is None:
        return STARTUP_MAX
    return min(STARTUP_MAX, max(STARTUP_MIN, target // STARTUP_SHARE))


def sampling_note(sampler: str, target: int) -> str:
    """A note when ``target`` is too small for ``sampler`` ever to model the scores, else ``""``."""
    if sampler != "tpe" or target > startup_trials(target):
        return ""
    return (
        f"note: a target of {target} trials is all random start-up for TPE (it models the scores "
        f"from trial {startup_trials(target) + 1} on); give --trials {STARTUP_MIN + 1} or more "
        "for a model-based search"
    )


def tpe_sampler(seed: int | None, target: int | None = None) -> optuna.samplers.BaseSampler:
    """Multivariate TPE (Optuna 5's default; it models the parameters jointly) with start-up
    trials sized to the target (:func:`startup_trials`) and ``constant_liar``: trials running in
    other workers count as poor results, so parallel workers are not steered to the same region
    (Optuna's remedy for parallel TPE; with one worker nothing is running while it samples)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=startup_trials(target), multivariate=True,
            constant_liar=True,
        )  # fmt: skip


def classic_tpe_sampler(seed: int | None, target: int | None = None) -> optuna.samplers.BaseSampler:
    """eegtune's TPE before benchmarks/budget.py: univariate, 10 random start-up trials whatever
    the target (kept for that benchmark's comparison and for studies that want it)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, constant_liar=True)


def random_sampler(seed: int | None, target: int | None = None) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def cmaes_sampler(seed: int | None, target: int | None = None) -> optuna.samplers.BaseSampler:
    """CMA-ES for the float parameters; the categorical ones go to a seeded TPE."""
    import optuna

    try:  # optuna imports it only when the first trial samples: after the study exists
        import cmaes  # noqa: F401
    except ImportError:
        raise StudyError("the cmaes sampler needs cmaes: pip install 'eegtune[cmaes]'") from None
    return optuna.samplers.CmaEsSampler(
        seed=seed,
        independent_sampler=optuna.samplers.TPESampler(seed=seed),
        warn_independent_sampling=False,
    )


def gp_sampler(seed: int | None, target: int | None = None) -> optuna.samplers.BaseSampler:
    import optuna

    try:
        import scipy  # noqa: F401
    except ImportError:
        raise StudyError("the gp sampler needs scipy: pip install 'eegtune[gp]'") from None
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(target))


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial ``number`` in a search seeded with ``seed``."""
    import numpy as np

    return int(np.random.SeedSequence([seed % 2**32, number]).generate_state(1)[0])


def make_sampler(
    name: str, seed: int | None, target: int | None = None
) -> optuna.samplers.BaseSampler:
    """A registered sampler by name, drawing each trial from its own seeded stream, sized for
    a study whose target is ``target`` trials (TPE's random start-up; see :func:`startup_trials`).

    Trial numbers are unique within a study, so a stream per trial number (derived from
    ``seed``, see :func:`trial_seed`) means that parallel workers, other machines and re-runs
    never propose the same sequence, while a fresh single-worker study with a given seed
    proposes the same trials every time. ``seed=None`` draws unseeded.
    """
    if name not in SAMPLERS:
        raise StudyError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    factory = partial(SAMPLERS[name].load(), target=target)
    if seed is None:
        unseeded: optuna.samplers.BaseSampler = factory(None)
        return unseeded
    factory(seed)  # fail now, not at the first trial, when the sampler cannot be made
    return _per_trial_sampler(factory, seed)


def _per_trial_sampler(
    factory: Callable[[int], optuna.samplers.BaseSampler], seed: int
) -> optuna.samplers.BaseSampler:
    import optuna

    class PerTrialSeedSampler(optuna.samplers.BaseSampler):
        """Delegates to a sampler made afresh, with the trial's own seed, before each trial."""

        def __init__(self) -> None:
            self.inner = factory(trial_seed(seed, 0))

        def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
            self.inner = factory(trial_seed(seed, trial.number))
            self.inner.before_trial(study, trial)

        def infer_relative_search_space(
            self, study: optuna.Study, trial: FrozenTrial
        ) -> dict[str, BaseDistribution]:
            return self.inner.infer_relative_search_space(study, trial)

        def sample_relative(
            self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]
        ) -> dict[str, Any]:
            return self.inner.sample_relative(study, trial, search_space)

        def sample_independent(
            self,
            study: optuna.Study,
            trial: FrozenTrial,
            param_name: str,
            param_distribution: BaseDistribution,
        ) -> Any:
            return self.inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(
            self,
            study: optuna.Study,
            trial: FrozenTrial,
            state: TrialState,
            values: Sequence[float] | None,
        ) -> None:
            self.inner.after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:
            self.inner.reseed_rng()

    return PerTrialSeedSampler()


HYPERBAND_REDUCTION = 4


def _hyperband_min_epochs(max_epochs: int) -> int:
    """Hyperband's first rung: no trial is compared before epoch 3 (or a ninth of the run).
    benchmarks/selection.py: a first rung at epoch 1 pruned the slow starters that test best
    (67.8% vs 81.3% test accuracy of the chosen configuration, BENCHMARKS.md)."""
    return max(3, max_epochs // 9)


def _warmup_epochs(max_epochs: int) -> int:
    return max(1, max_epochs // 10)


def hyperband_pruner(max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.HyperbandPruner(
        min_resource=_hyperband_min_epochs(max_epochs),
        max_resource=max_epochs,
        reduction_factor=HYPERBAND_REDUCTION,
    )


def median_pruner(max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.MedianPruner(
        n_startup_trials=5, n_warmup_steps=_warmup_epochs(max_epochs)
    )


def patient_pruner(max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.pruners.PatientPruner(
            median_pruner(max_epochs), patience=max(2, max_epochs // 20)
        )


def no_pruner(max_epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    return optuna.pruners.NopPruner()


def next_pruning_check(
    pruner: optuna.pruners.BasePruner,
    study: optuna.Study,
    trial: FrozenTrial,
    epoch: int,
    max_epochs: int | None,
) -> int | None:
    """The next epoch after ``epoch`` at which ``pruner`` (made by :func:`make_pruner`) can
    stop ``trial``; None when it never will (no pruner, or the last epoch is reached)."""
    import optuna

    if max_epochs is None or epoch + 1 >= max_epochs:
        return None  # a trial that trains all its epochs is never pruned
    if isinstance(pruner, optuna.pruners.HyperbandPruner):
        # Optuna has no public way to ask which bracket a trial is in; this is the one place
        # eegtune reads a pruner's private state. Rungs of bracket s lie at r * eta**(s + k).
        try:
            if not pruner._pruners:  # initialise once, as Optuna's own prune() does
                pruner._try_initialization(study)
            bracket = pruner._get_bracket_id(study, trial)
        except (AttributeError, AssertionError):
            return None
        rung = _hyperband_min_epochs(max_epochs) * HYPERBAND_REDUCTION**bracket
        while rung <= epoch:
            rung *= HYPERBAND_REDUCTION
        return rung if rung < max_epochs else None
    if isinstance(pruner, optuna.pruners.MedianPruner | optuna.pruners.PatientPruner):
        return max(epoch + 1, _warmup_epochs(max_epochs) + 1)
    return None


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """A registered pruner by name, sized for trials of at most ``max_epochs`` epochs."""
    if name not in PRUNERS:
        raise StudyError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}")
    pruner: optuna.pruners.BasePruner = PRUNERS[name].load()(max_epochs)
    return pruner
