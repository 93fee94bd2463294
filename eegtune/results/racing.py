"""Finalists raced: before a study's configuration is chosen, its best few trials are
re-scored on fresh validation splits, and the choice is made on the pooled score.

Why: a trial's score comes from one validation split (or one set of folds) whose noise is
often larger than the true differences between good configurations, so the trial that wins
the search is partly the luckiest one. Its score is biased upwards by that very choice; a
fresh split is not. Each finalist is retrained, for the epoch count it would be retrained
for, on ``splits`` fresh hold-outs (or, for a ``--folds K`` study, on K fresh folds) drawn
with other split seeds than the study's, all in lockstep; its pooled score is the mean of its
search score and the fresh ones. The race is stored with the study (a system attribute) and
reused while the finalists stay the same; ``evaluate``, ``compare`` and ``report`` read it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from eegtune.errors import EvaluateError
from eegtune.results.evaluate import chosen_epochs
from eegtune.search.study import StudySpec, completed_trials
from eegtune.training import train_folds

if TYPE_CHECKING:
    import optuna
    import torch
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from eegtune.data.dataset import Dataset, Split

__all__ = ["RACE_SEED_OFFSET", "Race", "finalists", "load_race", "race_study"]

RACE_KEY = "eegtune:race"
RACE_SEED_OFFSET = 1000
"""Fresh split seeds are the study's split seed plus this and upwards: never the study's own."""


@dataclass(frozen=True)
class Race:
    """A finished race: each finalist's scores (its search score first), the winner.

    Attributes:
        finalists: Trial numbers, best search score first.
        scores: Per finalist (as a string key, JSON-safe): search score, then each fresh one.
        winner: The trial with the best pooled score (ties: the better search score).
        noise: One standard error of the difference of two pooled scores on these splits
            (binomial over the validation trials), in accuracy.
        cost: What the race trained, in hold-out epochs (an epoch on 80% of the training set).
        split_seeds: The fresh split seeds used.
    """

    finalists: list[int]
    scores: dict[str, list[float]]
    winner: int
    noise: float
    cost: float
    split_seeds: list[int]

    def pooled(self, number: int) -> float:
        return statistics.fmean(self.scores[str(number)])

    @property
    def ranking(self) -> list[int]:
        """Finalists by pooled score, best first (ties: the better search score)."""
        order = {n: i for i, n in enumerate(self.finalists)}
        return sorted(self.finalists, key=lambda n: (-self.pooled(n), order[n]))

    @property
    def margin(self) -> float:
        """Winner's pooled score minus the runner-up's (0 with one finalist)."""
        ranking = self.ranking
        return self.pooled(ranking[0]) - self.pooled(ranking[1]) if len(ranking) > 1 else 0.0

    @property
    def within_noise(self) -> bool:
        return len(self.finalists) > 1 and self.margin < self.noise

    @property
    def text(self) -> str:
        """``trial 5 won the race of 3 finalists by 1.2 points ...``, in plain words."""
        n = len(self.finalists)
        splits = len(self.split_seeds)
        where = f"on {splits} fresh split(s) pooled with its search score"
        if n == 1:
            return f"trial {self.winner} was the only finalist (re-scored {where})"
        runner = self.ranking[1]
        head = (
            f"trial {self.winner} won the race of {n} finalists ({where}): pooled "
            f"{100 * self.pooled(self.winner):.1f}% vs {100 * self.pooled(runner):.1f}% for "
            f"trial {runner}, a margin of {100 * self.margin:.1f} points"
        )
        if self.winner != self.finalists[0]:
            head += f"; the search's best, trial {self.finalists[0]}, lost its lead"
        if self.within_noise:
            head += (
                f"; within the noise (one standard error of a difference is "
                f"{100 * self.noise:.1f} points): the finalists may be equally good"
            )
        return head

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Race:
        return cls(
            [int(n) for n in stored["finalists"]],
            {str(k): [float(v) for v in vs] for k, vs in stored["scores"].items()},
            int(stored["winner"]),
            float(stored["noise"]),
            float(stored["cost"]),
            [int(s) for s in stored["split_seeds"]],
        )


def finalists(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """The ``top`` best completed trials with distinct configurations, best first."""
    out: list[FrozenTrial] = []
    seen: set[str] = set()
    for trial in completed_trials(study):
        key = repr(sorted(trial.params.items()))
        if key not in seen:
            seen.add(key)
            out.append(trial)
        if len(out) == top:
            break
    return out


def _fresh_splits(spec: StudySpec, data: Dataset, splits: int) -> tuple[list[Split], list[int]]:
    """Fresh hold-outs (or, for a K-fold study, K fresh folds) and their split seeds."""
    first = spec.split_seed + RACE_SEED_OFFSET
    if spec.folds > 1:
        return data.folds(spec.folds, first), [first]
    seeds = [first + i for i in range(splits)]
    return [data.holdout(spec.val_fraction, s) for s in seeds], seeds


def load_race(
    storage: BaseStorage, study: optuna.Study, top: int | None = None, splits: int | None = None
) -> Race | None:
    """The stored race of ``study`` if it still races today's finalists (``top`` of them and
    ``splits`` fresh splits where given, else as many as it was run with); else None: a
    trial finished since then may have changed who the finalists are."""
    study_id = storage.get_study_id_from_name(study.study_name)
    stored = storage.get_study_system_attrs(study_id).get(RACE_KEY)
    if not isinstance(stored, dict):
        return None
    try:
        race = Race.from_dict(stored)
        asked_top, asked_splits = int(stored["requested_top"]), int(stored["requested_splits"])
    except (KeyError, TypeError, ValueError):
        return None
    if (top is not None and top != asked_top) or (splits is not None and splits != asked_splits):
        return None
    if race.finalists != [t.number for t in finalists(study, asked_top)]:
        return None
    return race


def race_study(
    storage: BaseStorage,
    study: optuna.Study,
    data: Dataset,
    *,
    top: int = 3,
    splits: int = 2,
    device: torch.device | str = "cpu",
    on_finalist: Callable[[int, list[float]], None] | None = None,
) -> Race:
    """Race the ``top`` finalists of ``study`` on ``splits`` fresh hold-outs (K fresh folds
    for a K-fold study) and store the result; a stored race of the same finalists is reused.

    Raises:
        EvaluateError: the study has no completed trial, or ``top``/``splits`` below 1.
    """
    if top < 1 or splits < 1:
        raise EvaluateError(f"a race needs at least 1 finalist and 1 split, got {top} and {splits}")
    stored = load_race(storage, study, top, splits)
    if stored is not None:
        return stored
    chosen = finalists(study, top)
    if not chosen:
        raise EvaluateError(
            f"study {study.study_name!r} has no completed trial to race; run `eegtune search` "
            "until at least one trial completes"
        )
    spec = StudySpec.from_attrs(study.user_attrs)
    fresh, seeds = _fresh_splits(spec, data, splits)
    full = 0.8 * len(data.y_train)
    scores: dict[str, list[float]] = {}
    cost = 0.0
    for trial in chosen:
        epochs = chosen_epochs(trial)
        runs, _ = train_folds(
            spec.model, trial.params, list(fresh), shape=data.model_kwargs, epochs=epochs,
            seed=RACE_SEED_OFFSET + trial.number, device=device,
        )  # fmt: skip
        values = [run.score_at(spec.objective, epochs) for run in runs]
        scores[str(trial.number)] = [float(trial.value or 0.0)] + [float(v or 0.0) for v in values]
        cost += sum(epochs * len(split.y_train) / full for split in fresh)
        if on_finalist is not None:
            on_finalist(trial.number, scores[str(trial.number)])
    n_val = statistics.fmean(len(split.y_val) for split in fresh)
    p = statistics.fmean(s for values in scores.values() for s in values)
    pooled_se = math.sqrt(max(p * (1 - p), 1e-6) / n_val) / math.sqrt(1 + len(fresh))
    order = {t.number: i for i, t in enumerate(chosen)}
    winner = min(order, key=lambda n: (-statistics.fmean(scores[str(n)]), order[n]))
    race = Race(list(order), scores, winner, math.sqrt(2) * pooled_se, cost, seeds)
    study_id = storage.get_study_id_from_name(study.study_name)
    storage.set_study_system_attr(
        study_id, RACE_KEY, {**race.to_dict(), "requested_top": top, "requested_splits": splits}
    )
    study.set_user_attr("race", race.text)
    return race
