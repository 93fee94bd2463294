"""Where training runs: naming a device (:func:`resolve_device`), the process-wide settings
for it (:func:`configure_process`), and one line on why training on it failed."""

from __future__ import annotations

import ctypes
import platform

import torch

from eegtune.errors import ConfigError

__all__ = ["configure_process", "resolve_device", "training_failure", "tune_cpu_allocator"]


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a usable device.

    Raises:
        ConfigError: for a malformed name or a CUDA device that is not there.
    """
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {spec!r} requested but no CUDA GPU is available; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} GPU(s) exist"
            )
    elif device.type != "cpu":
        raise ConfigError(f"unsupported device {spec!r}; use auto, cpu, cuda or cuda:N")
    return device


def training_failure(exc: BaseException) -> str:
    """One line on why training raised ``exc`` (CUDA out of memory gets advice)."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        torch.cuda.empty_cache()
        return "CUDA out of memory; try a smaller batch size or fewer workers per GPU"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt() parameters from glibc's <malloc.h>
_allocator_tuned: bool | None = None


def tune_cpu_allocator() -> bool:
    """Make glibc's malloc keep freed blocks of activation size instead of unmapping them.

    A training step allocates and frees the same tensors of a few MB over and over. With
    glibc's defaults those blocks come from fresh ``mmap`` pages (or a heap that is trimmed
    back after every free), so every step can pay thousands of page faults: on a 2-core VM that
    was about a fifth of an EEGNet step (28.4 ms vs 23.3 ms, see BENCHMARKS.md). Raising the
    mmap threshold (to 64 MiB, or glibc's 32 MiB cap) and the trim threshold (1 GiB) lets freed
    memory be reused without faults, at the price of the process holding on to its peak
    memory. Process-wide and idempotent; does nothing (and returns False) where the C library
    is not glibc.
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    mmap_ok = any(mallopt(_M_MMAP_THRESHOLD, mib << 20) == 1 for mib in (64, 32))
    _allocator_tuned = mmap_ok and mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    return _allocator_tuned


def configure_process(device: torch.device | str) -> None:
    """Process-wide settings for training on ``device``; called by entry points (the CLI, a
    worker process), never by :func:`fit` itself.

    On CUDA this turns on cuDNN autotuning (``torch.backends.cudnn.benchmark``), which suits
    the fixed input shape; on CPU it calls :func:`tune_cpu_allocator`.
    """
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:
        tune_cpu_allocator()
