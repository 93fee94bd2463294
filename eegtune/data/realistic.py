"""A seeded generator of motor-imagery trials with the difficulties of real recordings.

``synthetic`` is clean: every trial carries the effect, the noise is the same everywhere and
the test set is drawn like the training set. Real BCI data are not like that, and those are
the differences that decide which configuration tests best. The ``realistic`` dataset has
the lab data's shapes (2 channels, C3 and C4, at 125 Hz over 6 s; 1080 training and 1080 test
trials from 2 subjects, as BCI IIIb's S4 and X11) and:

- a low signal-to-noise ratio: a weaker mu rhythm in stronger 1/f background noise;
- trials without an imagery effect (the subject did not imagine, or not well), more of
  them for the second subject;
- eye blinks (slow bumps of up to 100 µV, seen on both channels) and muscle bursts
  (20-60 Hz, up to 1.5 s) in some trials;
- subjects that differ: their own mu frequency, rhythm strength, effect size, mixing
  between the channels (volume conduction) and noise level;
- a session shift between the training and the test set that a validation split of the
  training set cannot see: the test session has other electrode gains, a drifted mu
  frequency, more noise, a weaker effect and slow baseline drifts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegtune.data.bciiiib import LAB_CLASSES, N_CHANNELS, N_SAMPLES, SAMPLING_RATE, ProgressHook
from eegtune.data.dataset import Dataset, from_arrays
from eegtune.data.synthetic import pink_noise

__all__ = [
    "SMALL_TEST_TRIALS",
    "SMALL_TRAIN_TRIALS",
    "SUBJECTS",
    "load_realistic",
    "load_small",
    "make_realistic",
    "make_small",
]

SUBJECTS = ("1", "2")
TRIALS_PER_SUBJECT = 540  # per session: 1080 training and 1080 test trials, like BCI IIIb
SMALL_TRAIN_TRIALS = 160
"""Training trials of ``small``: one subject's short session, as many real recordings are
(100-300 trials); a 20% hold-out of it holds 32 trials (standard error about 8 points)."""
SMALL_TEST_TRIALS = 400
"""Test trials of ``small``: more than a real session has, so that benchmarks measure the
choice, not the test set's own noise (standard error about 2.4 points)."""


@dataclass(frozen=True)
class Session:
    """How one subject's session looks: the generator's knobs."""

    mu_freq: float  # Hz
    mu_amplitude: float  # µV
    noise: float  # µV, the 1/f background
    depth: float  # mean relative drop of the contralateral mu rhythm after the cue
    responders: float  # share of trials with an imagery effect
    gains: tuple[float, float]  # electrode gains of C3, C4
    mixing: float  # share of each channel seen on the other (volume conduction)
    drift: float  # µV, slow baseline drift
    blinks: float  # share of trials with eye blinks
    muscle: float  # share of trials with a muscle burst


def _subject(rng: np.random.Generator, index: int) -> Session:
    return Session(
        mu_freq=float(rng.uniform(9.0, 12.0)),
        mu_amplitude=float(rng.uniform(3.0, 4.0)),
        noise=float(rng.uniform(4.0, 5.0)),
        depth=float(rng.uniform(0.5, 0.65)),
        responders=(0.9, 0.8)[index % 2],
        gains=(float(rng.uniform(0.93, 1.07)), float(rng.uniform(0.93, 1.07))),
        mixing=float(rng.uniform(0.1, 0.3)),
        drift=1.0,
        blinks=0.25,
        muscle=0.1,
    )


def _test_session(rng: np.random.Generator, train: Session) -> Session:
    """The same subject on another day: what validation on the training session cannot see."""
    return Session(
        mu_freq=train.mu_freq + float(rng.choice([-1, 1]) * rng.uniform(0.3, 0.7)),
        mu_amplitude=train.mu_amplitude * float(rng.uniform(0.8, 0.95)),
        noise=train.noise * float(rng.uniform(1.05, 1.2)),
        depth=train.depth * 0.93,
        responders=train.responders - 0.03,
        gains=(float(rng.uniform(0.93, 1.07)), float(rng.uniform(0.93, 1.07))),
        mixing=train.mixing + float(rng.uniform(0.0, 0.1)),
        drift=2.0,
        blinks=0.35,
        muscle=0.15,
    )


def _session_trials(
    rng: np.random.Generator, session: Session, n_trials: int
) -> tuple[np.ndarray, np.ndarray]:
    """(signal (n, 750, 2) in µV, label of 1/2) of one session, in the raw lab format."""
    t = np.arange(N_SAMPLES) / SAMPLING_RATE
    label = np.tile([1.0, 2.0], (n_trials + 1) // 2)[:n_trials]
    rng.shuffle(label)
    noise = pink_noise(rng, (n_trials, N_CHANNELS), N_SAMPLES) * session.noise
    freq = session.mu_freq + rng.normal(0.0, 0.5, size=(n_trials, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_trials, N_CHANNELS, 1))
    amplitude = session.mu_amplitude * rng.uniform(0.7, 1.3, size=(n_trials, N_CHANNELS, 1))
    mu = amplitude * np.sin(2 * np.pi * freq * t[None, None, :] + phase)
    contra = np.where(label == 1, 1, 0)  # left hand weakens C4, right hand C3
    responds = rng.random(n_trials) < session.responders
    depth = np.clip(rng.normal(session.depth, 0.2, size=n_trials), 0.0, 0.9) * responds
    onset = 3.0 + rng.uniform(0.3, 1.2, size=n_trials)
    ramp = 1.0 / (1.0 + np.exp(-(t[None, :] - onset[:, None]) * 4.0))
    gain = np.ones((n_trials, N_CHANNELS, N_SAMPLES))
    gain[np.arange(n_trials), contra, :] = 1.0 - depth[:, None] * ramp
    sources = noise + mu * gain
    mix = np.array([[1.0, session.mixing], [session.mixing, 1.0]])
    signal = np.einsum("ij,njt->nit", mix, sources)
    signal += _blinks(rng, n_trials, session.blinks, t)
    signal += _muscle(rng, n_trials, session.muscle, t)
    slope = rng.normal(0.0, session.drift, size=(n_trials, N_CHANNELS, 1))
    offset = rng.normal(0.0, 2 * session.drift, size=(n_trials, N_CHANNELS, 1))
    signal += offset + slope * (t[None, None, :] - t.mean())
    signal *= np.asarray(session.gains)[None, :, None]
    return np.ascontiguousarray(signal.transpose(0, 2, 1)), label


def _blinks(rng: np.random.Generator, n: int, share: float, t: np.ndarray) -> np.ndarray:
    """Eye blinks: 1-3 slow bumps (about 0.3 s, 40-100 µV) at random times, on both channels
    (a little weaker on one of them)."""
    out = np.zeros((n, N_CHANNELS, N_SAMPLES))
    for i in np.flatnonzero(rng.random(n) < share):
        for _ in range(int(rng.integers(1, 4))):
            centre, width = rng.uniform(0.0, t[-1]), rng.uniform(0.1, 0.2)
            bump = rng.uniform(40.0, 100.0) * np.exp(-0.5 * ((t - centre) / width) ** 2)
            out[i] += bump[None, :] * np.array([1.0, rng.uniform(0.7, 1.0)])[:, None]
    return out


def _muscle(rng: np.random.Generator, n: int, share: float, t: np.ndarray) -> np.ndarray:
    """Muscle bursts: 20-60 Hz noise of 10-30 µV for 0.5-1.5 s, on one channel or both."""
    out = np.zeros((n, N_CHANNELS, N_SAMPLES))
    for i in np.flatnonzero(rng.random(n) < share):
        start = rng.uniform(0.0, t[-1] - 0.5)
        window = (t >= start) & (t < start + rng.uniform(0.5, 1.5))
        burst = rng.standard_normal((N_CHANNELS, N_SAMPLES))
        spectrum = np.fft.rfft(burst, axis=-1)
        freqs = np.fft.rfftfreq(N_SAMPLES, d=1.0 / SAMPLING_RATE)
        spectrum[:, (freqs < 20) | (freqs > 60)] = 0
        burst = np.fft.irfft(spectrum, n=N_SAMPLES, axis=-1)
        burst /= burst.std(axis=-1, keepdims=True)
        channels = rng.choice([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        out[i] += rng.uniform(10.0, 30.0) * burst * window[None, :] * channels[:, None]
    return out


def make_realistic(
    seed: int = 0,
    trials_per_subject: int = TRIALS_PER_SUBJECT,
    *,
    subjects: tuple[str, ...] = SUBJECTS,
    test_trials_per_subject: int | None = None,
    name: str = "realistic",
) -> Dataset:
    """The seeded ``realistic`` dataset: 2 subjects, a training and a shifted test session
    (``subjects`` and the trial counts make other sizes of it, such as :func:`make_small`)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {"train": [], "test": []}
    sizes = {"train": trials_per_subject, "test": test_trials_per_subject or trials_per_subject}
    for index, subject in enumerate(subjects):
        train = _subject(rng, index)
        for part, session in (("train", train), ("test", _test_session(rng, train))):
            signal, label = _session_trials(rng, session, sizes[part])
            parts[part].append((signal, label, np.full(len(label), subject)))

    def joined(part: str) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        signal = np.concatenate([s.transpose(0, 2, 1) for s, _, _ in parts[part]])
        label = np.concatenate([y.astype(np.int64) - 1 for _, y, _ in parts[part]])
        return (signal, label), np.concatenate([who for _, _, who in parts[part]])

    (train_xy, train_who), (test_xy, test_who) = joined("train"), joined("test")
    return from_arrays(train_xy, test_xy, name, LAB_CLASSES, subjects=(train_who, test_who))


def make_small(seed: int = 0) -> Dataset:
    """The seeded ``small`` dataset: one subject of ``realistic``'s kind (artifacts, session
    shift), :data:`SMALL_TRAIN_TRIALS` training and :data:`SMALL_TEST_TRIALS` test trials."""
    return make_realistic(
        seed, SMALL_TRAIN_TRIALS, subjects=("1",), test_trials_per_subject=SMALL_TEST_TRIALS,
        name="small",
    )  # fmt: skip


def load_realistic(
    data_dir: Path, *, offline: bool = True, progress: ProgressHook | None = None
) -> Dataset:
    """The ``realistic`` dataset loader: :func:`make_realistic` with seed 0 (no files)."""
    return make_realistic(seed=0)


def load_small(
    data_dir: Path, *, offline: bool = True, progress: ProgressHook | None = None
) -> Dataset:
    """The ``small`` dataset loader: :func:`make_small` with seed 0 (no files)."""
    return make_small(seed=0)
