"""The field's classical reference pipelines: CSP + LDA, Riemannian tangent space + logistic
regression (pyriemann and scikit-learn, the ``references`` extra).

Both band-pass the trials (zero-phase Butterworth, order 4) to the mu and beta band, estimate
one spatial covariance per trial over a time window (Oracle Approximating Shrinkage,
well-conditioned with few channels), and classify features of it. The window is the one
choice they make, by cross-validation on the training set; nothing else is tuned: they are
what a tuned network must beat, trained in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from eegtune.errors import ConfigError

__all__ = ["REFERENCES", "REFERENCE_BAND", "WINDOWS", "Reference", "fit_predict", "reference_band"]

REFERENCE_BAND = (8.0, 30.0)
"""The classical motor-imagery band (mu and beta rhythms) the references filter to, within
whatever band the data already has."""


@dataclass(frozen=True)
class Reference:
    """One reference pipeline: its name, its title on pages, and how it is built."""

    name: str
    title: str
    build: Callable[[int], Any]  # n_channels -> an unfitted scikit-learn pipeline on covariances


def _csp_lda(n_channels: int) -> Any:
    from pyriemann.spatialfilters import CSP
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        CSP(nfilter=min(6, n_channels), log=True), LinearDiscriminantAnalysis()
    )


def _tangent_lr(n_channels: int) -> Any:
    from pyriemann.tangentspace import TangentSpace
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TangentSpace(metric="riemann"), LogisticRegression(max_iter=1000))


REFERENCES: dict[str, Reference] = {
    r.name: r
    for r in (
        Reference("csp-lda", "CSP + LDA", _csp_lda),
        Reference("ts-lr", "tangent space + LR", _tangent_lr),
    )
}


def reference_band(
    data_band: tuple[float, float] | None, sampling_rate: float
) -> tuple[float, float]:
    """The band the references filter to: :data:`REFERENCE_BAND` within the data's own band
    (a MOABB dataset's ``--fmin``/``--fmax``) and below the Nyquist frequency."""
    low, high = REFERENCE_BAND
    if data_band is not None:
        low, high = max(low, data_band[0]), min(high, data_band[1])
    high = min(high, 0.45 * sampling_rate)
    if not 0 < low < high:
        raise ConfigError(
            f"the data's band ({data_band}) leaves nothing of {REFERENCE_BAND[0]:g}-"
            f"{REFERENCE_BAND[1]:g} Hz for the reference pipelines"
        )
    return low, high


WINDOWS = ((0.0, 1.0), (1 / 3, 1.0), (0.5, 1.0), (0.6, 1.0))
"""Candidate time windows, as fractions of the trial: the whole trial, and later parts of it
(cued data usually holds its imagery after the cue). Each pipeline picks one by 5-fold
cross-validation on the training set only."""


def _filtered(x: np.ndarray, band: tuple[float, float], rate: float) -> np.ndarray:
    """Trials (N, 1, C, T) band-passed over the whole trial: (N, C, T) float64."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(4, band, btype="bandpass", fs=rate, output="sos")
    return np.asarray(sosfiltfilt(sos, np.asarray(x[:, 0], dtype=np.float64), axis=-1))


def _covariances(filtered: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Spatial covariances (N, C, C) of the ``window`` part of filtered trials."""
    from pyriemann.estimation import Covariances

    n = filtered.shape[-1]
    part = filtered[..., round(window[0] * n) : round(window[1] * n)]
    return np.asarray(Covariances(estimator="oas").fit_transform(part))


def fit_predict(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    band: tuple[float, float],
    sampling_rate: float,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Fit reference ``name`` on the training trials (its window chosen among
    :data:`WINDOWS` by cross-validation there); return its test predictions and the window
    in seconds from the trial's start."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    build = REFERENCES[name].build
    channels, samples = x_train.shape[2], x_train.shape[3]
    train, test = _filtered(x_train, band, sampling_rate), _filtered(x_test, band, sampling_rate)
    folds = StratifiedKFold(n_splits=min(5, int(np.bincount(y_train).min())), shuffle=True,
                            random_state=0)  # fmt: skip
    scores = [
        cross_val_score(build(channels), _covariances(train, w), y_train, cv=folds).mean()
        for w in WINDOWS
    ]
    window = WINDOWS[int(np.argmax(scores))]
    pipeline = build(channels)
    pipeline.fit(_covariances(train, window), y_train)
    seconds = (window[0] * samples / sampling_rate, window[1] * samples / sampling_rate)
    return np.asarray(pipeline.predict(_covariances(test, window))), seconds
