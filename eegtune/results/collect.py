"""What a report reads from each study (:class:`StudyReport`), the lab's headline rows, and
the provenance of the numbers. Reads studies; never trains or writes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eegtune.errors import ReportError
from eegtune.names import ACTIVATIONS, network_title
from eegtune.results.racing import Race, load_race
from eegtune.results.references import ReferenceResult, load_references
from eegtune.results.statistics import MIN_SEEDS_FOR_VERDICT
from eegtune.search.study import (
    StudySpec,
    best_by_activation,
    completed_trials,
    load_evaluation,
    load_study,
    trial_row,
    trial_source,
)

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from eegtune.data.sources import DataSource

__all__ = ["StudyReport", "collect", "headline", "provenance", "shared_references"]


@dataclass
class StudyReport:
    """What the report needs from one study."""

    study: optuna.Study
    name: str
    model: str
    states: dict[str, int]
    complete: list[FrozenTrial]
    evaluation: dict[str, Any] = field(default_factory=dict)
    references: list[ReferenceResult] = field(default_factory=list)
    race: Race | None = None  # the stored race of its finalists, while they are still those

    def rows(self, top: int) -> list[dict[str, Any]]:
        return [trial_row(self.name, self.model, t) for t in self.complete[:top]]

    def best_by_activation(self) -> dict[str, FrozenTrial]:
        return best_by_activation(self.complete)

    @property
    def activations(self) -> list[str]:
        """The activations this study searched: one for a cell of ``compare``, else all."""
        fixed = self.study.user_attrs.get("activation")
        return [str(fixed)] if fixed else list(ACTIVATIONS)

    @property
    def title(self) -> str:
        return f"{network_title(self.model)} ({self.name})"

    @property
    def source(self) -> DataSource:
        """The dataset, subjects and preprocessing the study was searched on."""
        return StudySpec.from_attrs(self.study.user_attrs).source

    @property
    def objective(self) -> str:
        """How the study scores a trial (``smoothed``, ``best``)."""
        return StudySpec.from_attrs(self.study.user_attrs).objective

    @property
    def classes_text(self) -> str:
        """``0 = left_hand, 1 = right_hand``: the study's label mapping."""
        classes = self.study.user_attrs.get("classes") or []
        return ", ".join(f"{i} = {name}" for i, name in enumerate(classes)) or "not recorded"


def collect(storage: BaseStorage, names: list[str] | None = None) -> list[StudyReport]:
    """Read the named studies (all studies in the storage when ``names`` is empty).

    Raises:
        ReportError: when there is no study, or no named study has a completed trial.
    """
    import optuna

    names = list(names or optuna.study.get_all_study_names(storage))
    if not names:
        raise ReportError("no studies in this storage; run `eegtune search` first")
    reports = []
    for name in names:
        study = load_study(storage, name)
        trials = study.get_trials(deepcopy=False)
        complete = completed_trials(study)
        reports.append(
            StudyReport(
                study=study,
                name=name,
                model=str(study.user_attrs.get("model", name)),
                states=dict(Counter(t.state.name for t in trials)),
                complete=complete,
                evaluation=load_evaluation(storage, study),
                references=load_references(storage, study),
                race=load_race(storage, study),
            )
        )
    if not any(r.complete for r in reports):
        detail = "; ".join(
            f"{r.name}: " + (", ".join(f"{n} {s.lower()}" for s, n in r.states.items()) or "empty")
            for r in reports
        )
        raise ReportError(
            f"no completed trials to report ({detail}); run `eegtune search` until trials complete"
        )
    return reports


def shared_references(reports: list[StudyReport]) -> list[ReferenceResult]:
    """The classical references to show beside these studies: those stored with the first
    study that has any (the cells of one ``compare`` all hold the same ones)."""
    return next((r.references for r in reports if r.references), [])


def headline(reports: list[StudyReport]) -> list[dict[str, Any]]:
    """The lab's table: per network x activation, best val accuracy and test mean +- std."""
    rows = []
    for report in reports:
        best = report.best_by_activation()
        for activation in report.activations:
            trial = best.get(activation)
            evaluation = report.evaluation.get(activation)
            for label in ("best", "tuned"):  # evaluate's overall best, compare's tuned one
                overall = report.evaluation.get(label)
                if evaluation is None and overall and overall["params"]["activation"] == activation:
                    evaluation = overall
            rows.append(
                {
                    "study": report.name,
                    "model": report.model,
                    "activation": activation,
                    "objective": report.objective,
                    "val_acc": trial.value if trial else None,
                    "trial": trial.number if trial else None,
                    "source": trial_source(trial) if trial else None,
                    "test_mean": evaluation["mean"] if evaluation else None,
                    "test_std": evaluation["std"] if evaluation else None,
                    "test_seeds": len(evaluation["test_acc"]) if evaluation else 0,
                    "chance": evaluation.get("chance") if evaluation else None,
                }
            )
    return rows


def provenance(reports: list[StudyReport], storage: str | None) -> dict[str, str]:
    """How the numbers were obtained: storage, studies, split, seeds, software versions."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    splits = sorted({StudySpec.from_attrs(r.study.user_attrs).describe_split() for r in reports})
    seeds = sorted({len(e.get("test_acc", [])) for r in reports for e in r.evaluation.values()})
    return {
        "storage": storage or "-",
        "studies": "; ".join(f"{r.name} ({r.model} on {r.source.describe()})" for r in reports),
        "classes": "; ".join(sorted({r.classes_text for r in reports})),
        "validation split": "; ".join(splits),
        "test seeds per configuration": ", ".join(map(str, seeds)) or "not evaluated",
        "choice of configuration": "; ".join(
            f"{r.name}: {r.race.text}" for r in reports if r.race is not None
        )
        or "the best search score (no race of finalists stored)",
        "statistics": "brackets are 95% t-intervals over the test seeds, clipped to 0-100%; a "
        "verdict between activations (or against the lab's settings) pairs the same seeds and "
        "needs a 95% interval of the mean difference that excludes 0, from at least "
        f"{MIN_SEEDS_FOR_VERDICT} seeds; a classical reference is trained once, its bracket a "
        "95% Wilson interval over the test trials",
        "software": f"eegtune {installed('eegtune')}, torch {installed('torch')}, "
        f"optuna {installed('optuna')}",
    }  # fmt: skip
