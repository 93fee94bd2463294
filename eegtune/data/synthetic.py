"""A seeded generator of synthetic motor-imagery trials with the lab data's shapes, so that
every command can run (and every test can train) without the real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eegtune.data.bciiiib import N_CHANNELS, N_SAMPLES, SAMPLING_RATE, ProgressHook, prepare
from eegtune.data.dataset import Dataset

__all__ = ["load_synthetic", "make_raw_synthetic", "make_synthetic", "pink_noise"]


def pink_noise(rng: np.random.Generator, shape: tuple[int, ...], n: int) -> np.ndarray:
    """1/f noise along the last axis, unit variance."""
    freqs = np.fft.rfftfreq(n, d=1.0 / SAMPLING_RATE)
    scale = np.zeros_like(freqs)
    scale[1:] = 1.0 / np.sqrt(freqs[1:])
    spectrum = rng.standard_normal((*shape, len(freqs))) + 1j * rng.standard_normal(
        (*shape, len(freqs))
    )
    noise = np.fft.irfft(spectrum * scale, n=n)
    return noise / noise.std(axis=-1, keepdims=True)


def make_raw_synthetic(
    n_trials: int, seed: int, nan_fraction: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic motor-imagery trials in the raw lab format.

    Each trial has two channels (C3, C4) at 125 Hz over 6 s: 1/f background noise plus a
    mu rhythm (8-13 Hz, random frequency and phase per trial). After the cue at 3 s, imagining
    one hand weakens the rhythm over the opposite hemisphere (event-related desynchronisation):
    left hand (label 1) weakens C4, right hand (label 2) weakens C3. The size of the drop
    varies from trial to trial and is sometimes absent, so the task is learnable, not trivial.

    Returns:
        ``signal`` float64 (n_trials, 750, 2) and ``label`` float64 (n_trials,) of 1/2.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(N_SAMPLES) / SAMPLING_RATE
    label = np.tile([1.0, 2.0], (n_trials + 1) // 2)[:n_trials]
    rng.shuffle(label)
    noise = pink_noise(rng, (n_trials, N_CHANNELS), N_SAMPLES) * 6.0
    freq = rng.uniform(8.0, 13.0, size=(n_trials, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_trials, N_CHANNELS, 1))
    amplitude = rng.uniform(2.0, 4.0, size=(n_trials, N_CHANNELS, 1))
    mu = amplitude * np.sin(2 * np.pi * freq * t[None, None, :] + phase)
    # ERD: contralateral channel index (0 = C3, 1 = C4); left hand -> C4, right hand -> C3.
    contra = np.where(label == 1, 1, 0)
    depth = np.clip(rng.normal(0.45, 0.3, size=n_trials), 0.0, 0.95)
    onset = 3.0 + rng.uniform(0.2, 0.8, size=n_trials)
    ramp = 1.0 / (1.0 + np.exp(-(t[None, :] - onset[:, None]) * 6.0))  # (n, 750)
    gain = np.ones((n_trials, N_CHANNELS, N_SAMPLES))
    gain[np.arange(n_trials), contra, :] = 1.0 - depth[:, None] * ramp
    signal = (noise + mu * gain).transpose(0, 2, 1).astype(np.float64)
    if nan_fraction > 0:
        mask = rng.random(signal.shape) < nan_fraction
        signal[mask] = np.nan
    return np.ascontiguousarray(signal), label


def make_synthetic(n_train: int = 1080, n_test: int = 1080, seed: int = 0) -> Dataset:
    """A seeded synthetic dataset with the real data's shapes, dtypes and split sizes."""
    train = make_raw_synthetic(n_train, seed=seed)
    test = make_raw_synthetic(n_test, seed=seed + 10_000)
    return prepare([train], [test], name="synthetic")


def load_synthetic(
    data_dir: Path, *, offline: bool = True, progress: ProgressHook | None = None
) -> Dataset:
    """The ``synthetic`` dataset loader: :func:`make_synthetic` with seed 0 (no files)."""
    return make_synthetic(seed=0)
