"""The lab's two networks, EEGNet and DeepConvNet, and the activation registry.

Both take input (N, 1, n_chans, n_times) and derive their classifier size from it: the lab
input 1 x 2 x 750 gives exactly Linear(736, 2) for EEGNet and Linear(8600, 2) for DeepConvNet.
"""

from __future__ import annotations

import sys
from functools import lru_cache, partial

import torch
from torch import nn

from eegtune.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "MODELS",
    "DeepConvNet",
    "Dropout",
    "EEGNet",
    "build_model",
    "count_parameters",
]

ACTIVATIONS: dict[str, type[nn.Module] | partial[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": partial(nn.LeakyReLU, negative_slope=0.01),
    "elu": partial(nn.ELU, alpha=1.0),
}


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU.

    The same operation (zero each element with probability ``p``, scale the rest by
    ``1 / (1 - p)``), but on CPU the mask comes from 16-bit integers instead of
    ``bernoulli_``: one 31-bit draw of the CPU generator yields two independent 15- and 16-bit
    uniform integers, so a mask costs half the draws and no float conversion (``bernoulli_``
    was 14% of an EEGNet training step, this is about 4x cheaper). The drop probability is
    ``p`` rounded to a multiple of 1/32768 (|error| <= 1.5e-5). Other devices use the fused
    kernel of ``nn.Dropout``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or not _LITTLE_ENDIAN:
            return super().forward(x)
        drop = min(round(self.p * 32768), 32767)  # drop probability drop / 32768
        n = x.numel()
        bits = torch.empty((n + 1) // 2, dtype=torch.int32, device=x.device).random_()
        # Little-endian int16 halves of a value in [0, 2**31): the low half is uniform on
        # [-32768, 32767], the high half on [0, 32767]; both thresholds drop drop / 32768.
        keep = (bits.view(torch.int16) >= _thresholds(drop, len(bits)))[:n]
        keep = keep.as_strided(x.shape, x.stride()) if _dense(x) else keep.view(x.shape)
        # One float mask with the scale folded in: backward multiplies by it without
        # converting a bool mask again.
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))


_LITTLE_ENDIAN = sys.byteorder == "little"


def _dense(x: torch.Tensor) -> bool:
    """Whether ``x`` is laid out densely (contiguous or channels-last), as masks can mirror."""
    return x.is_contiguous() or (
        x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    )


@lru_cache(maxsize=16)
def _thresholds(drop: int, pairs: int) -> torch.Tensor:
    """Per-element int16 keep thresholds for ``pairs`` (low, high) halves (no broadcasting:
    a full-size comparison is 4x faster than one against a broadcast pair)."""
    return torch.tensor([2 * drop - 32768, drop], dtype=torch.int16).repeat(pairs)


def _flat_features(features: nn.Module, n_chans: int, n_times: int) -> int:
    """Size of ``features``' flattened output for one input of shape (1, n_chans, n_times)."""
    was_training = features.training
    features.eval()  # BatchNorm must not update its running statistics here
    with torch.no_grad():
        out = features(torch.zeros(1, 1, n_chans, n_times))
    features.train(was_training)
    return int(out.numel())


class EEGNet(nn.Module):
    """EEGNet as specified by the lab (temporal conv, depthwise spatial conv, separable conv)."""

    def __init__(
        self,
        n_chans: int = 2,
        n_times: int = 750,
        n_outputs: int = 2,
        activation: type[nn.Module] | partial[nn.Module] = nn.ELU,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            # firstconv
            nn.Conv2d(1, 16, (1, 51), padding=(0, 25), bias=False),
            nn.BatchNorm2d(16),
            # depthwise
            nn.Conv2d(16, 32, (n_chans, 1), groups=16, bias=False),
            nn.BatchNorm2d(32),
            activation(),
            nn.AvgPool2d((1, 4)),
            Dropout(dropout),
            # separable
            nn.Conv2d(32, 32, (1, 15), padding=(0, 7), bias=False),
            nn.BatchNorm2d(32),
            activation(),
            nn.AvgPool2d((1, 8)),
            Dropout(dropout),
        )
        self.classify = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat_features(self.features, n_chans, n_times), n_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


class DeepConvNet(nn.Module):
    """DeepConvNet as specified by the lab (filters 25, 50, 100, 200)."""

    def __init__(
        self,
        n_chans: int = 2,
        n_times: int = 750,
        n_outputs: int = 2,
        activation: type[nn.Module] | partial[nn.Module] = nn.ELU,
        dropout: float = 0.5,
        filters: tuple[int, ...] = (25, 50, 100, 200),
    ) -> None:
        super().__init__()
        first = filters[0]
        layers: list[nn.Module] = [
            nn.Conv2d(1, first, (1, 5)),
            nn.Conv2d(first, first, (n_chans, 1)),
            nn.BatchNorm2d(first),
            activation(),
            nn.MaxPool2d((1, 2)),
            Dropout(dropout),
        ]
        for c_in, c_out in zip(filters[:-1], filters[1:], strict=True):
            layers += [
                nn.Conv2d(c_in, c_out, (1, 5)),
                nn.BatchNorm2d(c_out),
                activation(),
                nn.MaxPool2d((1, 2)),
                Dropout(dropout),
            ]
        self.features = nn.Sequential(*layers)
        self.classify = nn.Sequential(
            nn.Flatten(), nn.Linear(_flat_features(self.features, n_chans, n_times), n_outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


MODELS: dict[str, type[nn.Module]] = {"eegnet": EEGNet, "deepconvnet": DeepConvNet}


def build_model(
    name: str,
    activation: str = "elu",
    dropout: float = 0.25,
    *,
    n_chans: int = 2,
    n_times: int = 750,
    n_outputs: int = 2,
) -> nn.Module:
    """Build a network by name (``eegnet``, ``deepconvnet``) with a named activation.

    Raises:
        ConfigError: for an unknown network or activation name, or a dropout outside [0, 1).
    """
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    if activation not in ACTIVATIONS:
        raise ConfigError(
            f"unknown activation {activation!r}; choose one of: {', '.join(ACTIVATIONS)}"
        )
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must lie in [0, 1), got {dropout}")
    return MODELS[name](
        n_chans=n_chans,
        n_times=n_times,
        n_outputs=n_outputs,
        activation=ACTIVATIONS[activation],
        dropout=dropout,
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
