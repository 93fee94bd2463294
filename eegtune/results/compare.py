"""``eegtune compare``: the lab's network x activation table, every cell tuned and tested.

Design: one study per cell, named ``<prefix>-<network>-<activation>``, searched with the
activation fixed, so every cell gets the same trial budget and none can be starved by the
sampler's taste. The lab's own settings are enqueued as trial 0 of each cell (never pruned).
With ``warm``, a later cell also starts from the best configurations of the cells of its network
already searched (its own activation substituted), queued after its baseline. Then each cell's
best configuration ("tuned") and its baseline trial ("baseline") are retrained and tested over
the same seeds, exactly as ``evaluate`` does. Running the command again continues where it
stopped: searches go on to their target, evaluations already done are kept.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from eegtune.errors import CompareError
from eegtune.names import LAB_SETTINGS, NETWORKS, RACE_SPLITS
from eegtune.results.evaluate import Evaluation, chosen_epochs, evaluate_study, plan_evaluation
from eegtune.results.racing import Race, load_race, race_study
from eegtune.results.statistics import Interval, mean_ci, paired_difference, verdict
from eegtune.results.text import interval_text
from eegtune.search.plan import SearchPlan, plan_search
from eegtune.search.run import run_search
from eegtune.search.study import completed_trials, create_or_check_study, load_study

if TYPE_CHECKING:
    import optuna
    import torch
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from eegtune.data.dataset import Dataset
    from eegtune.search.progress import SearchStatus

__all__ = [
    "Cell",
    "CompareClock",
    "Comparison",
    "cell_name",
    "cell_plans",
    "compare_activations",
    "mean_gains",
    "evaluate_cells",
    "planned_evaluations",
    "race_cells",
    "search_cell",
    "warm_configs",
]


@dataclass
class Cell:
    """One network x activation cell: its study and what its evaluation found."""

    model: str
    activation: str
    study: str
    tuned: Evaluation | None = None
    baseline: Evaluation | None = None
    reason: str = ""  # why there is no tested value, when there is none
    states: dict[str, int] = field(default_factory=dict)

    @property
    def difference(self) -> Interval | None:
        """Tuned minus baseline test accuracy, paired over seeds."""
        if self.tuned is None or self.baseline is None:
            return None
        return paired_difference(self.tuned.by_seed, self.baseline.by_seed)

    def to_dict(self) -> dict[str, Any]:
        diff = self.difference
        return {
            "model": self.model,
            "activation": self.activation,
            "study": self.study,
            "tuned": None if self.tuned is None else self.tuned.to_dict(),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "difference": None
            if diff is None
            else {"mean": diff.mean, "ci95": [diff.low, diff.high], "seeds": diff.n},
            "reason": self.reason,
            "states": self.states,
        }


@dataclass(frozen=True)
class Comparison:
    """Two activations of one network, paired over the same seeds."""

    model: str
    first: str
    second: str
    difference: Interval | None

    @property
    def text(self) -> str:
        return verdict(self.first, self.second, self.difference)

    def to_dict(self) -> dict[str, Any]:
        d = self.difference
        return {
            "model": self.model,
            "first": self.first,
            "second": self.second,
            "mean": None if d is None else d.mean,
            "ci95": None if d is None else [d.low, d.high],
            "verdict": self.text,
        }


RETRAIN_COST = 1.25
"""A retraining epoch on the whole training set against a search epoch on its 80%."""


@dataclass
class CompareClock:
    """One progress figure and one time estimate for a whole ``compare`` run: every cell's
    search and the evaluations after them.

    Work is counted in epochs and timed per network: a cell's search reports its epochs done
    and left and its own time (:class:`SearchStatus`), so each network gets its measured
    seconds per epoch; a network not timed yet costs the timed one's rate times their
    registry ``epoch_cost`` ratio. A cell not searched yet is expected to take its trial budget
    times the epochs a trial took in that network's cells so far (``--epochs`` before any);
    its race (``race`` finalists, when racing) trains each finalist on :data:`RACE_SPLITS`
    fresh hold-outs (a K-fold cell: K folds) for as many epochs as a trial took; its evaluation
    retrains each tested configuration ``seeds`` times, for as many epochs as a trial took,
    each epoch :data:`RETRAIN_COST` times a search epoch.
    """

    cells: list[SearchPlan]
    seeds: int
    baseline: bool
    started: float = field(default_factory=time.time)
    searched: dict[str, SearchStatus] = field(default_factory=dict)
    race: int = 0  # finalists raced per cell (0: no race)
    raced: dict[str, float] = field(default_factory=dict)  # cell -> hold-out epochs its race took
    planned: dict[str, int] | None = None  # label -> epochs, once the evaluations are known
    evaluated: Counter[str] = field(default_factory=Counter)  # label -> epochs retrained

    def search(self, cell: str, status: SearchStatus) -> None:
        """Take a cell's latest status."""
        self.searched[cell] = status

    def race_done(self, cell: str, cost: float) -> None:
        """Take a cell's finished race and what it trained (:attr:`Race.cost`)."""
        self.raced[cell] = cost

    def evaluations(self, planned: list[tuple[str, int]]) -> None:
        self.planned = {label: epochs * self.seeds for label, epochs in planned}

    def evaluated_epoch(self, label: str = "") -> None:
        self.evaluated[label] += 1

    def _model_of(self, label: str) -> str:
        cell = label.split("/")[0]
        return next((p.model for p in self.cells if p.name == cell), self.cells[0].model)

    def _seconds_per_epoch(self) -> dict[str, float]:
        """Measured seconds per search epoch of each network, and estimated ones of the rest."""
        measured: dict[str, tuple[float, int]] = {}
        for plan in self.cells:
            status = self.searched.get(plan.name)
            if status is not None and status.epochs_done > 0:
                spent, epochs = measured.get(plan.model, (0.0, 0))
                measured[plan.model] = (spent + status.elapsed, epochs + status.epochs_done)
        rates = {m: spent / epochs for m, (spent, epochs) in measured.items()}
        if not rates:
            return {}
        known, rate = next(iter(rates.items()))
        for plan in self.cells:
            if plan.model not in rates:
                ratio = _epoch_cost(plan.model) / _epoch_cost(known)
                rates[plan.model] = rate * ratio
        return rates

    def _per_trial(self, model: str) -> float:
        seen = [
            (s.epochs_done + s.epochs_left) / max(1, s.target)
            for p in self.cells
            if p.model == model and (s := self.searched.get(p.name)) is not None
        ]
        return sum(seen) / len(seen) if seen else float(self.cells[0].epochs)

    def _work(self) -> list[tuple[str, float, float]]:
        """(network, epochs, cost per epoch) of everything still to do."""
        work = []
        configs = 2 if self.baseline else 1
        for plan in self.cells:
            status = self.searched.get(plan.name)
            left = status.epochs_left if status else plan.trials * self._per_trial(plan.model)
            work.append((plan.model, left, 1.0))
            if self.race and self.planned is None and plan.name not in self.raced:
                folds = plan.spec.folds
                fresh = RACE_SPLITS if folds == 1 else (folds - 1) / 0.8  # K folds of (K-1)/K
                work.append((plan.model, self.race * fresh * self._per_trial(plan.model), 1.0))
            if self.planned is None:
                retrain = configs * self.seeds * self._per_trial(plan.model)
                work.append((plan.model, retrain, RETRAIN_COST))
        for label, epochs in (self.planned or {}).items():
            left = max(0, epochs - self.evaluated[label])
            work.append((self._model_of(label), float(left), RETRAIN_COST))
        return work

    def totals(self) -> tuple[int, float]:
        """(epochs done in this run, epochs left), searches and evaluations together."""
        done = sum(s.epochs_done for s in self.searched.values()) + sum(self.evaluated.values())
        done += round(sum(self.raced.values()))
        return done, sum(epochs for _, epochs, _ in self._work())

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left for the whole run; None before an epoch was timed."""
        rates = self._seconds_per_epoch()
        if not rates:
            return None
        left = sum(epochs * cost * rates[model] for model, epochs, cost in self._work())
        if left <= 0:
            return 0.0
        return max(min(rates.values()), left)

    def fraction(self) -> float:
        done, left = self.totals()
        return done / (done + left) if done + left > 0 else 1.0


def _epoch_cost(model: str) -> float:
    entry = NETWORKS.get(model)
    return entry.epoch_cost if entry is not None else 1.0


def cell_name(prefix: str, model: str, activation: str) -> str:
    """The study name of a cell."""
    return f"{prefix}-{model}-{activation}"


def _prepare_cell(
    storage: BaseStorage,
    plan: SearchPlan,
    baseline: bool,
    warm: Sequence[tuple[str, dict[str, Any]]] = (),
) -> None:
    """Create the cell's study and enqueue the lab's settings as its first trial, then the
    ``warm`` configurations, each marked with its source. The warm list is fixed when the study
    is new (a study searched before keeps its own history) and stored with it, so that a resume
    queues again only a warm trial that failed (Ctrl-C, SIGTERM, a crash), as for the baseline."""
    from optuna.trial import TrialState

    study, _ = create_or_check_study(storage, plan.name, plan.spec)
    study.set_user_attr("activation", plan.activation)
    trials = study.get_trials(deepcopy=False)
    alive = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
    kept = (*alive, TrialState.PRUNED)  # a pruned warm trial had its chance
    taken = sum(t.state in kept for t in trials)  # of the target: done, running or queued
    if baseline and not any(
        t.user_attrs.get("baseline") for t in trials if t.state in alive
    ):  # new, or its baseline was interrupted (Ctrl-C, SIGTERM) or failed: queue it again
        study.enqueue_trial(
            {**LAB_SETTINGS, "activation": plan.activation}, user_attrs={"baseline": True}
        )
        taken += 1
    queued = study.user_attrs.get("warm_started")
    if queued is None and warm and all(t.user_attrs.get("baseline") for t in trials):
        queued = [[source, params] for source, params in warm]
        study.set_user_attr("warm_started", queued)  # first: a kill now leaves it to the resume
    for source, params in queued or []:
        if taken >= plan.trials:
            break  # the target is spoken for: a queued trial would wait forever
        if not any(t.user_attrs.get("warm_start") == source and t.state in kept for t in trials):
            study.enqueue_trial(params, user_attrs={"warm_start": source})
            taken += 1


def warm_configs(
    studies: list[optuna.Study], activation: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """(source study, params) of the best completed trial of each of ``studies``, with
    ``activation`` substituted; the lab's settings and repeats left out (already queued)."""
    lab = {**LAB_SETTINGS, "activation": activation}
    found: list[tuple[str, dict[str, Any]]] = []
    for study in studies:
        complete = completed_trials(study)
        if not complete:
            continue
        params = dict(complete[0].params)
        if activation is not None:
            params["activation"] = activation
        if params != lab and all(params != seen for _, seen in found):
            found.append((study.study_name, params))
    return found


def _baseline_trial(study: optuna.Study) -> FrozenTrial | None:
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if trial.user_attrs.get("baseline"):
            return trial
    return None


def cell_plans(
    models: list[str], activations: list[str], prefix: str, **request: Any
) -> list[SearchPlan]:
    """The search plan of every cell, each checked (nothing is written when one is wrong).

    ``request`` holds :func:`~eegtune.search.plan.plan_search`'s other arguments.
    """
    return [
        plan_search(m, activation=a, study_name=cell_name(prefix, m, a), **request)
        for m in models
        for a in activations
    ]


def search_cell(
    plan: SearchPlan,
    *,
    baseline: bool,
    data_set: Dataset,
    storage: BaseStorage,
    on_status: Callable[[SearchStatus], None] | None = None,
    warm: Sequence[tuple[str, dict[str, Any]]] = (),
) -> SearchStatus:
    """Search one cell to its trial budget (the lab's settings as trial 0 unless not wanted,
    then the ``warm`` configurations from :func:`warm_configs` on a new cell)."""
    plan = plan.sized_for(data_set)  # the cell's scoring, as run_search sizes it
    _prepare_cell(storage, plan, baseline, warm)
    return run_search(plan, on_status=on_status, data_set=data_set, storage=storage)


def _chosen(
    storage: BaseStorage, study: optuna.Study, baseline: bool, race: int
) -> tuple[dict[str, FrozenTrial], str]:
    """The configurations to test in a cell ("tuned": the winner of its stored race of
    ``race`` finalists, else the best search score; "baseline"), or why there are none."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        counts = Counter(t.state.name.lower() for t in trials)
        listed = ", ".join(f"{n} {s}" for s, n in counts.items())
        return {}, f"no completed trial ({listed or 'no trials'}); search longer"
    configs = {"tuned": max(complete, key=lambda t: (t.value or 0.0, -t.number))}
    won = load_race(storage, study, top=race) if race else None
    if won is not None:
        configs["tuned"] = next(t for t in complete if t.number == won.winner)
    lab = _baseline_trial(study)
    if lab is not None:
        configs["baseline"] = lab
    return configs, "" if lab is not None or not baseline else "the baseline did not complete"


def race_cells(
    cells: list[SearchPlan],
    *,
    top: int,
    data_set: Dataset,
    storage: BaseStorage,
    device: torch.device | str = "cpu",
    on_race: Callable[[str, Race], None] | None = None,
) -> None:
    """Race each searched cell's ``top`` finalists (stored with the cell; reused while its
    finalists stay the same). A cell without a completed trial is left to its row's note."""
    for plan in cells:
        study = load_study(storage, plan.name)
        if completed_trials(study):
            race = race_study(storage, study, data_set, top=top, splits=RACE_SPLITS,
                              device=device)  # fmt: skip
            if on_race is not None:
                on_race(plan.name, race)


def planned_evaluations(
    storage: BaseStorage, cells: list[SearchPlan], baseline: bool, race: int = 0
) -> list[tuple[str, int]]:
    """(label, epochs) of every retraining :func:`evaluate_cells` will do, for progress."""
    planned = []
    for plan in cells:
        configs, _ = _chosen(storage, load_study(storage, plan.name), baseline, race)
        planned += [(f"{plan.name}/{label}", chosen_epochs(t)) for label, t in configs.items()]
    return planned


def evaluate_cells(
    cells: list[SearchPlan],
    *,
    seeds: int,
    baseline: bool,
    data_set: Dataset,
    storage: BaseStorage,
    device: torch.device | str = "cpu",
    models_dir: str = "studies/models",
    on_epoch: Callable[[str, int, Any], None] | None = None,
    on_seed: Callable[[str, int, float], None] | None = None,
    artifacts: FileSystemArtifactStore | None = None,
    race: int = 0,
) -> list[Cell]:
    """Retrain and test each cell's tuned and baseline configurations over the same seeds
    ("tuned" is the winner of the cell's stored race of ``race`` finalists, where there is
    one: see :func:`race_cells`).

    Evaluations already stored with the same trials and seeds are reused, not retrained.
    Hook labels are ``<cell study>/<tuned|baseline>``.
    """
    from optuna.trial import TrialState

    if seeds < 1:
        raise CompareError(f"--seeds must be at least 1, got {seeds}")
    out = []
    for plan in cells:
        study = load_study(storage, plan.name)
        states = Counter(t.state for t in study.get_trials(deepcopy=False))
        cell = Cell(
            plan.model,
            str(plan.activation),
            plan.name,
            states={s.name: states[s] for s in TrialState if states[s]},
        )
        out.append(cell)
        configs, cell.reason = _chosen(storage, study, baseline, race)
        if not configs:
            continue
        evaluation = plan_evaluation(
            storage,
            plan.name,
            seeds=seeds,
            configs=configs,
            device=str(device),
            models_dir=models_dir,
            amp=plan.amp,
            artifacts=artifacts,
        )
        evaluations = evaluate_study(
            evaluation,
            data_set,
            storage=storage,
            on_epoch=None if on_epoch is None else partial(_relabel, on_epoch, plan.name),
            on_seed=None if on_seed is None else partial(_relabel, on_seed, plan.name),
        )
        by_label = {e.label: e for e in evaluations}
        cell.tuned, cell.baseline = by_label.get("tuned"), by_label.get("baseline")
    return out


def _relabel(hook: Callable[..., None], cell: str, label: str, *args: Any) -> None:
    hook(f"{cell}/{label}", *args)


@dataclass(frozen=True)
class Gain:
    """Tuned minus the lab's settings of one network, averaged over its activations."""

    model: str
    activations: int
    difference: Interval

    @property
    def text(self) -> str:
        return (
            f"tuned vs the lab's settings, mean over {self.activations} activation(s): "
            f"{interval_text(self.difference, signed=True)} points (95% CI over "
            f"{self.difference.n} seeds, each seed's mean over the activations)"
        )

    def to_dict(self) -> dict[str, Any]:
        d = self.difference
        return {"model": self.model, "activations": self.activations, "mean": d.mean,
                "ci95": [d.low, d.high], "seeds": d.n}  # fmt: skip


def mean_gains(cells: list[Cell]) -> list[Gain]:
    """Per network, the tuned cells' gain over the lab's settings averaged over the
    activations, on the seeds every such cell tested (paired: one mean per seed)."""
    out = []
    for model in dict.fromkeys(c.model for c in cells):
        pairs = [(c.tuned.by_seed, c.baseline.by_seed) for c in cells if c.model == model
                 and c.tuned is not None and c.baseline is not None]  # fmt: skip
        if not pairs:
            continue
        seeds = sorted(set.intersection(*(set(t) & set(b) for t, b in pairs)))
        if not seeds:
            continue
        per_seed = [sum(t[s] - b[s] for t, b in pairs) / len(pairs) for s in seeds]
        out.append(Gain(model, len(pairs), mean_ci(per_seed)))
    return out


def compare_activations(cells: list[Cell]) -> list[Comparison]:
    """Every pair of activations within each network, tuned test accuracy paired over seeds."""
    out = []
    for model in dict.fromkeys(c.model for c in cells):
        tested = [c for c in cells if c.model == model and c.tuned is not None]
        for i, first in enumerate(tested):
            for second in tested[i + 1 :]:
                assert first.tuned is not None and second.tuned is not None
                diff = paired_difference(first.tuned.by_seed, second.tuned.by_seed)
                out.append(Comparison(model, first.activation, second.activation, diff))
    return out
