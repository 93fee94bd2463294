"""eegtune: Optuna hyperparameter search for EEGNet and DeepConvNet on BCI IIIb EEG.

The public Python API is imported lazily so that ``import eegtune`` (and the CLI) stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "EegtuneError",
    "__version__",
    "build_model",
    "fit",
    "load_bci_iiib",
    "load_dataset",
    "make_synthetic",
]

from eegtune.errors import DataError, EegtuneError

_LAZY = {
    "build_model": "eegtune.models.networks",
    "fit": "eegtune.training",
    "load_bci_iiib": "eegtune.data.bciiiib",
    "load_dataset": "eegtune.data.loading",
    "make_synthetic": "eegtune.data.synthetic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'eegtune' has no attribute {name!r}")
