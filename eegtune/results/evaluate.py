"""Honest test accuracy: retrain the chosen configuration with several seeds, test once each.

The configuration (and its epoch count, the best validation epoch of its trial) is fixed by the
search before the test set is touched. Each seed retrains on the full training set and is
measured on the test set exactly once. Results are stored in the study (see
:func:`eegtune.search.study.save_evaluation`) so that ``eegtune report`` can show them, and the
weights are saved.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eegtune.data.sources import parse_source
from eegtune.device import resolve_device
from eegtune.errors import EvaluateError
from eegtune.files import atomic_write, atomic_write_text, safe_name
from eegtune.results.statistics import Interval, mean_ci
from eegtune.search.artifacts import attach_file
from eegtune.search.study import (
    StudySpec,
    best_by_activation,
    check_data,
    completed_trials,
    load_evaluation,
    load_seeds,
    load_study,
    save_evaluation,
    save_seed,
)
from eegtune.training import predict, train_configuration

if TYPE_CHECKING:
    import optuna
    import torch
    from optuna.artifacts import FileSystemArtifactStore
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

    from eegtune.data.dataset import Dataset
    from eegtune.training import EpochRecord

__all__ = [
    "Evaluation",
    "EvaluationPlan",
    "choose_configs",
    "choose_study",
    "chosen_epochs",
    "evaluate_study",
    "models_folder",
    "plan_evaluation",
]


@dataclass
class Evaluation:
    """Per-seed test accuracies of one fixed configuration."""

    label: str
    trial: int
    params: dict[str, Any]
    epochs: int
    seeds: list[int]
    test_acc: list[float]
    per_subject: dict[str, list[float]] = field(default_factory=dict)  # by seed, where known
    classes: list[str] = field(default_factory=list)  # class names, in class-index order
    confusion: list[list[int]] = field(default_factory=list)  # [true][predicted], all seeds
    chance: float | None = None  # test accuracy of always answering the most frequent class
    # Per seed (same order as ``seeds``), accuracy per epoch of the final retrain: "train_acc"
    # and "test_acc". The test curve is recorded for the lab's figure only: it chooses nothing
    # (the epoch count was fixed by validation before the retrain started).
    curves: list[dict[str, list[float]]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Evaluation:
        """An evaluation as :meth:`to_dict` stored it."""
        return cls(
            stored["label"],
            stored["trial"],
            dict(stored["params"]),
            stored["epochs"],
            list(stored["seeds"]),
            list(stored["test_acc"]),
            {k: list(v) for k, v in (stored.get("per_subject") or {}).items()},
            list(stored.get("classes") or []),
            [list(row) for row in stored.get("confusion") or []],
            stored.get("chance"),
            [dict(c) for c in stored.get("curves") or []],
        )

    @property
    def per_class(self) -> dict[str, float]:
        """Accuracy on each class (recall), over every seed's test predictions."""
        rows = zip(self.classes, self.confusion, strict=False)
        return {name: row[i] / sum(row) for i, (name, row) in enumerate(rows) if sum(row)}

    @property
    def by_seed(self) -> dict[int, float]:
        return dict(zip(self.seeds, self.test_acc, strict=True))

    @property
    def interval(self) -> Interval:
        """Mean test accuracy with its 95% confidence interval over seeds."""
        return mean_ci(self.test_acc)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.test_acc)

    @property
    def std(self) -> float:
        return statistics.stdev(self.test_acc) if len(self.test_acc) > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        ci = self.interval
        out.update(
            mean=self.mean,
            std=self.std,
            min=min(self.test_acc),
            max=max(self.test_acc),
            ci95=[ci.low, ci.high],
        )
        return out


def choose_study(storage: BaseStorage, name: str | None) -> optuna.Study:
    """The study named ``name``, or the only study in the storage when ``name`` is None."""
    import optuna

    if name is None:
        names = optuna.study.get_all_study_names(storage)
        if len(names) != 1:
            listing = ", ".join(names) or "none"
            raise EvaluateError(f"choose a study with --study (studies in this storage: {listing})")
        name = names[0]
    return load_study(storage, name)


def choose_configs(study: optuna.Study, per_activation: bool) -> dict[str, FrozenTrial]:
    """The best completed trial (label ``best``), or the best of each activation."""
    ranked = completed_trials(study)
    if not ranked:
        raise EvaluateError(
            f"study {study.study_name!r} has no completed trial to evaluate; "
            "run `eegtune search` until at least one trial completes"
        )
    return best_by_activation(ranked) if per_activation else {"best": ranked[0]}


def chosen_epochs(trial: FrozenTrial) -> int:
    """How long a chosen configuration is retrained: its trial's best validation epoch."""
    return int(trial.user_attrs.get("best_epoch") or trial.user_attrs["epochs_trained"])


@dataclass(frozen=True)
class EvaluationPlan:
    """What an evaluation retrains, checked once by :func:`plan_evaluation`.

    Attributes:
        study: The searched study; its results are stored in it.
        spec: What the study was made for (model, data, split, objective).
        configs: The trials to retrain, by label (``best``, an activation, ``tuned``, ...).
        seeds: Seeds 0..seeds-1.
        device: The resolved training device (``cpu``, ``cuda:0``, ...).
        models_dir: Weights go to ``models_dir/<study>/<label>/seed<N>.pt``.
        amp: Train under bfloat16 autocast (see :func:`eegtune.training.fit`).
        artifacts: Optuna artifact store to attach each new seed's weights to the study.
    """

    study: optuna.Study
    spec: StudySpec
    configs: dict[str, FrozenTrial]
    seeds: int
    device: str
    models_dir: Path
    amp: bool = False
    artifacts: FileSystemArtifactStore | None = None

    @property
    def name(self) -> str:
        return self.study.study_name

    @property
    def runs(self) -> list[tuple[str, int]]:
        """(label, epochs) of each configuration retrained, in order."""
        return [(label, chosen_epochs(t)) for label, t in self.configs.items()]

    def folder(self, label: str) -> Path:
        return models_folder(self.models_dir, self.name) / safe_name(label)


def plan_evaluation(
    storage: BaseStorage,
    study: str | None = None,
    *,
    dataset: str | None = None,
    seeds: int = 5,
    per_activation: bool = False,
    configs: dict[str, FrozenTrial] | None = None,
    device: str = "cpu",
    models_dir: Path | str = "studies/models",
    amp: bool = False,
    artifacts: FileSystemArtifactStore | None = None,
) -> EvaluationPlan:
    """Check an evaluation request once, before any data are loaded.

    Args:
        storage: The open storage of the study.
        study: Study name (default: the only study in the storage).
        dataset: A dataset the user named; it must be the one the study was searched on.
        seeds: Retraining seeds.
        per_activation: Retrain the best trial of each activation instead of the overall best.
        configs: Trials to retrain by label (instead of the choice ``per_activation`` makes).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        models_dir: Where weights and their ``config.json`` go.
        amp: Train under bfloat16 autocast.
        artifacts: Attach each newly trained seed's weights to the study in this store.

    Raises:
        EvaluateError: too few seeds, no such study, a study not made by eegtune, another
            dataset, or nothing completed to retrain.
        ConfigError: a device that is not there.
    """
    if seeds < 1:
        raise EvaluateError(f"--seeds must be at least 1, got {seeds}")
    loaded = choose_study(storage, study)
    if not loaded.user_attrs.get("model"):
        raise EvaluateError(f"study {loaded.study_name!r} was not made by eegtune search")
    spec = StudySpec.from_attrs(loaded.user_attrs)
    if dataset is not None and parse_source(dataset).dataset != spec.source.dataset:
        raise EvaluateError(
            f"study {loaded.study_name!r} was searched on {spec.source.dataset}; evaluate it on "
            f"the same dataset (drop --dataset {dataset})"
        )
    chosen = dict(configs) if configs is not None else choose_configs(loaded, per_activation)
    return EvaluationPlan(
        study=loaded,
        spec=spec,
        configs=chosen,
        seeds=seeds,
        device=str(resolve_device(device)),
        models_dir=Path(models_dir),
        amp=amp,
        artifacts=artifacts,
    )


def evaluate_study(
    plan: EvaluationPlan,
    data: Dataset,
    *,
    storage: BaseStorage,
    on_seed: Callable[[str, int, float], None] | None = None,
    on_epoch: Callable[[str, int, EpochRecord], None] | None = None,
) -> list[Evaluation]:
    """Retrain the plan's configurations with its seeds and measure test accuracy once each.

    Each seed's result is stored the moment it is tested (:func:`eegtune.search.study.save_seed`)
    and never trained again: an interrupted run, or one with more seeds, trains only the
    seeds that are missing, and concurrent runs keep each other's results.

    Args:
        plan: What to retrain (:func:`plan_evaluation`).
        data: The dataset (training and test sets); it must be the data the study was
            searched on.
        storage: The study's storage, where the results are kept.
        on_seed: Called as ``on_seed(label, seed, test_acc)`` after each seed trained here
            (not for seeds kept from an earlier run).
        on_epoch: Called as ``on_epoch(label, seed, record)`` after each training epoch.

    Returns:
        One :class:`Evaluation` per configuration, also stored in the study.
    """
    study = plan.study
    if plan.spec.data:  # the study remembers its data: refuse changed data
        check_data(study.study_name, plan.spec.data, data.fingerprint())
    results = []
    stored = load_evaluation(storage, study)
    tested = load_seeds(storage, study)
    for label, trial in plan.configs.items():
        epochs = chosen_epochs(trial)
        done = {
            seed: record
            for seed, record in tested.get(label, {}).items()
            if (record.get("trial"), record.get("epochs")) == (trial.number, epochs)
        }
        before = stored.get(label) or {}
        if not done and (before.get("trial"), before.get("seeds")) == (
            trial.number,
            list(range(plan.seeds)),
        ):
            results.append(Evaluation.from_dict(before))  # stored before seed records existed
            continue
        evaluation = Evaluation(
            label, trial.number, dict(trial.params), epochs, [], [],
            classes=list(data.classes), chance=data.chance,
        )  # fmt: skip
        confusion = np.zeros((data.n_classes, data.n_classes), dtype=np.int64)
        folder = plan.folder(label)
        for seed in range(plan.seeds):
            record = done.get(seed)
            if record is None:  # not tested yet: train it, and keep it the moment it is done
                hook = None if on_epoch is None else partial(on_epoch, label, seed)
                predicted, curves = _train_and_test(plan, evaluation, data, seed, hook, folder)
                acc, by_subject = data.test_accuracy(predicted)
                record = {
                    "trial": trial.number,
                    "epochs": epochs,
                    "test_acc": acc,
                    "per_subject": by_subject,
                    "confusion": confusion_matrix(data.y_test, predicted, data.n_classes).tolist(),
                    "curves": curves,
                }
                if plan.artifacts is not None:  # the weights live with the study too
                    record["artifact"] = attach_file(
                        plan.artifacts, storage, study, folder / f"seed{seed}.pt",
                        f"{study.study_name}-{label}-seed{seed}.pt",
                    )  # fmt: skip
                save_seed(storage, study, label, seed, record)
                if on_seed is not None:
                    on_seed(label, seed, acc)
            confusion += np.asarray(record["confusion"], dtype=np.int64)
            evaluation.confusion = confusion.tolist()
            evaluation.seeds.append(seed)
            evaluation.test_acc.append(float(record["test_acc"]))
            evaluation.curves.append(dict(record.get("curves") or {}))  # {} before curves
            for subject, subject_acc in record["per_subject"].items():
                evaluation.per_subject.setdefault(subject, []).append(subject_acc)
        config = {"model": plan.spec.model, "study": study.study_name, **evaluation.to_dict()}
        atomic_write_text(folder / "config.json", json.dumps(config, indent=2))
        results.append(evaluation)
    save_evaluation(storage, study, {e.label: e.to_dict() for e in results})
    return results


def _train_and_test(
    plan: EvaluationPlan,
    evaluation: Evaluation,
    data: Dataset,
    seed: int,
    on_epoch: Callable[[EpochRecord], None] | None,
    folder: Path,
) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Train one seed on the full training set, save the weights.

    The test set is measured after every epoch for the learning curve of the lab's figure;
    ``fit`` only records those values (evaluation mode draws no random numbers and updates no
    statistics), so the trained weights are the same as without them.

    Returns:
        The test predictions of the final weights, and the curves (``train_acc``,
        ``test_acc`` per epoch).
    """
    model, result = train_configuration(
        plan.spec.model,
        evaluation.params,
        data.x_train,
        data.y_train,
        data.x_test,  # recorded per epoch for the figure, never used to choose
        data.y_test,
        shape=data.model_kwargs,
        epochs=evaluation.epochs,
        seed=seed,
        device=plan.device,
        amp=plan.amp,
        callback=on_epoch,
    )
    if result.status == "diverged":
        raise EvaluateError(f"{evaluation.label}, seed {seed}: {result.message}")
    predicted = predict(model, data.x_test, plan.device)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(folder / f"seed{seed}.pt", partial(_save_weights, state))
    curves = {
        "train_acc": [r.train_acc for r in result.history],
        "test_acc": [float(r.val_acc or 0.0) for r in result.history],
    }
    return predicted, curves


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts of [true class][predicted class]."""
    flat = np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def models_folder(models_dir: Path | str, study_name: str) -> Path:
    """Where ``evaluate`` saves a study's weights: always inside ``models_dir``."""
    return Path(models_dir) / safe_name(study_name)


def _save_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    import torch

    torch.save(state, path)
