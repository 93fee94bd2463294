"""The classical references beside the networks: each pipeline of
:mod:`eegtune.models.classical` trained on the same training set and tested once on the same
test set and subjects, with a 95% interval over the test trials; stored with the studies they
stand beside, so ``report`` shows them without training anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from eegtune.errors import ConfigError
from eegtune.models.classical import REFERENCES, fit_predict, reference_band
from eegtune.results.statistics import Interval, binomial_ci

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

    from eegtune.data.dataset import Dataset

__all__ = [
    "REFERENCES_EXTRA",
    "ReferenceResult",
    "check_references",
    "load_references",
    "run_references",
    "save_references",
]

REFERENCES_KEY = "eegtune:references"
REFERENCES_EXTRA = "pip install 'eegtune[references]'"


@dataclass(frozen=True)
class ReferenceResult:
    """One reference pipeline's test result (``accuracy`` None when it could not run)."""

    name: str
    title: str
    accuracy: float | None
    n_test: int
    band: tuple[float, float]
    window: tuple[float, float]  # seconds from the trial's start, chosen on the training set
    seconds: float
    chance: float
    per_subject: dict[str, float] = field(default_factory=dict)
    reason: str = ""  # why there is no accuracy, when there is none

    @property
    def interval(self) -> Interval | None:
        """The test accuracy with its 95% Wilson interval over the test trials."""
        if self.accuracy is None:
            return None
        return binomial_ci(round(self.accuracy * self.n_test), self.n_test)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        ci = self.interval
        out["band"], out["window"] = list(self.band), list(self.window)
        out["ci95"] = None if ci is None else [ci.low, ci.high]
        return out

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> ReferenceResult:
        return cls(
            str(stored["name"]), str(stored["title"]), stored.get("accuracy"),
            int(stored["n_test"]), (float(stored["band"][0]), float(stored["band"][1])),
            (float(stored["window"][0]), float(stored["window"][1])),
            float(stored.get("seconds", 0.0)), float(stored.get("chance", 0.0)),
            {str(k): float(v) for k, v in (stored.get("per_subject") or {}).items()},
            str(stored.get("reason", "")),
        )  # fmt: skip


def check_references() -> None:
    """Refuse, in one line, before anything trains, when the extra is not installed."""
    from importlib.util import find_spec

    missing = [m for m in ("pyriemann", "sklearn", "scipy") if find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"the classical references need {', '.join(missing)}: {REFERENCES_EXTRA}, or "
            "leave out --references"
        )


def run_references(
    data: Dataset, on_done: Callable[[ReferenceResult], None] | None = None
) -> list[ReferenceResult]:
    """Train every reference on ``data``'s training set and test it once on its test set.

    A pipeline that fails on this data (a rank-deficient covariance, say) gives a result
    with its reason rather than stopping the command whose networks are already tested.
    """
    import numpy as np

    check_references()
    band = reference_band(data.band, data.sampling_rate)
    out = []
    for reference in REFERENCES.values():
        started = time.perf_counter()
        try:
            predicted, window = fit_predict(
                reference.name, data.x_train, data.y_train, data.x_test, band=band,
                sampling_rate=data.sampling_rate,
            )  # fmt: skip
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
            reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            result = ReferenceResult(
                reference.name, reference.title, None, len(data.y_test), band, (0.0, 0.0),
                time.perf_counter() - started, data.chance, reason=f"could not run: {reason}",
            )  # fmt: skip
        else:
            accuracy, by_subject = data.test_accuracy(predicted)
            result = ReferenceResult(
                reference.name, reference.title, accuracy, len(data.y_test), band, window,
                time.perf_counter() - started, data.chance, by_subject,
            )  # fmt: skip
        out.append(result)
        if on_done is not None:
            on_done(result)
    return out


def save_references(
    storage: BaseStorage, study: optuna.Study, results: list[ReferenceResult]
) -> None:
    """Store the references with a study (a system attribute; one readable user attribute
    per reference, which the dashboard shows)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    storage.set_study_system_attr(study_id, REFERENCES_KEY, [r.to_dict() for r in results])
    for r in results:
        ci = r.interval
        study.set_user_attr(
            f"reference {r.name}",
            r.reason
            if ci is None or ci.low is None or ci.high is None
            else f"test accuracy {100 * ci.mean:.2f}% (95% CI {100 * ci.low:.1f}-"
            f"{100 * ci.high:.1f}) over {r.n_test} test trials, {r.band[0]:g}-{r.band[1]:g} Hz, "
            f"{r.window[0]:.1f}-{r.window[1]:.1f} s",
        )


def load_references(storage: BaseStorage, study: optuna.Study) -> list[ReferenceResult]:
    """The references stored with a study ([] before any)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    stored = storage.get_study_system_attrs(study_id).get(REFERENCES_KEY)
    if not isinstance(stored, list):
        return []
    return [ReferenceResult.from_dict(r) for r in stored if isinstance(r, dict)]
