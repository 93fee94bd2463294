"""The first design: a new study starts from a few strong, diverse configurations.

The configurations are the network's portfolio in the registry (:data:`eegtune.names.PORTFOLIOS`,
chosen by ``benchmarks/budget.py portfolio``). They are queued once per study, after compare's
baseline and warm trials, each marked with its place in the portfolio (``portfolio`` user
attribute), and only while the study's target has room. The list is stored with the study when
it is first queued, so that a resume re-queues only a portfolio trial that failed (Ctrl-C,
SIGTERM, a crash), and a second worker or a rerun queues nothing again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eegtune.names import LAB_SETTINGS, PORTFOLIOS

if TYPE_CHECKING:
    import optuna

    from eegtune.search.space import SearchSpace

__all__ = ["enqueue_portfolio", "is_repeat", "portfolio_configs"]

QUEUED_KEY = "portfolio_queued"
"""The study attribute that holds the portfolio as it was queued."""


def portfolio_configs(
    model: str, space: SearchSpace, activation: str | None = None
) -> list[dict[str, Any]]:
    """The network's portfolio inside ``space``, ``activation`` substituted where fixed (a
    compare cell); repeats and the lab's own settings left out (compare queues those)."""
    found: list[dict[str, Any]] = []
    for entry in PORTFOLIOS.get(model, ()):
        config = dict(entry)
        if activation is not None:
            config["activation"] = activation
        lab = {**LAB_SETTINGS, "activation": config.get("activation")}
        if config != lab and config not in found and space.contains(config):
            found.append(config)
    return found


def enqueue_portfolio(
    study: optuna.Study, model: str, space: SearchSpace, target: int, activation: str | None
) -> int:
    """Queue the portfolio in a new study (see the module's docstring); returns how many
    trials were queued now."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    queued = study.user_attrs.get(QUEUED_KEY)
    if queued is None:
        searched = [t for t in trials if not _queued_first(t)]
        if searched:
            return 0  # a study searched before keeps its own history
        queued = portfolio_configs(model, space, activation)
        study.set_user_attr(QUEUED_KEY, queued)  # first: a kill now leaves it to the resume
    kept = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING, TrialState.PRUNED)
    taken = sum(t.state in kept for t in trials)  # of the target: done, running or queued
    added = 0
    for index, params in enumerate(queued):
        if any(t.user_attrs.get("portfolio") == index and t.state in kept for t in trials):
            continue
        if taken >= target:
            break  # the target is spoken for: a queued trial would wait forever
        study.enqueue_trial(params, user_attrs={"portfolio": index})
        taken += 1
        added += 1
    return added


def is_repeat(study: optuna.Study, trial: optuna.Trial) -> bool:
    """Whether ``trial`` is a portfolio trial whose configuration an earlier trial already
    trains or trained (two commands that started together on a new study both queued it)."""
    from optuna.trial import TrialState

    index = trial.user_attrs.get("portfolio")
    if index is None:
        return False
    taken = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    return any(
        t.number < trial.number and t.user_attrs.get("portfolio") == index
        for t in study.get_trials(deepcopy=False, states=taken)
    )


def _queued_first(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a trial was queued before the portfolio: compare's baseline or warm start."""
    return bool(trial.user_attrs.get("baseline") or trial.user_attrs.get("warm_start"))
