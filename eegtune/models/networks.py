"""The lab's two networks, EEGNet and DeepConvNet, a fast CPU dropout, and ``build_model``.

Both take input (N, 1, n_chans, n_times) and derive their classifier size from it: the lab
input 1 x 2 x 750 gives exactly Linear(736, 2) for EEGNet and Linear(8600, 2) for DeepConvNet.
Layers are named (``features.conv_temporal``, ``classifier.linear`` ...) as braindecode's are;
weights saved with the earlier numbered names (``features.0.weight``) still load.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache, partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from eegtune.errors import ConfigError
from eegtune.names import ACTIVATIONS, DEFAULT_ACTIVATION, DROPOUT_MAX, NETWORKS

if TYPE_CHECKING:
    from eegtune.data.dataset import Dataset

__all__ = [
    "DeepConvNet",
    "Dropout",
    "EEGNet",
    "activation_class",
    "build_model",
    "check_input",
    "count_parameters",
    "min_times",
]

ActivationClass = Callable[[], nn.Module]
DropoutLayer = Callable[[float], nn.Module]


class Dropout(nn.Dropout):
    """``nn.Dropout`` with a cheaper mask on CPU.

    The same operation (zero each element with probability ``p``, scale the rest by
    ``1 / (1 - p)``), but on CPU the mask comes from 16-bit integers instead of
    ``bernoulli_``: one 31-bit draw of the CPU generator yields two independent 15- and 16-bit
    uniform integers, so a mask costs half the draws and no float conversion (``bernoulli_``
    was 14% of an EEGNet training step, this is about 4x cheaper). The drop probability is
    ``p`` rounded to a multiple of 1/32768 (|error| <= 1.5e-5). Other devices use the fused
    kernel of ``nn.Dropout``.

    ``generator``, when set (as :func:`eegtune.training.fit` does for its run), is the CPU
    generator the masks are drawn from; else torch's default generator.
    """

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or not _LITTLE_ENDIAN:
            return super().forward(x)
        drop = min(round(self.p * 32768), 32767)  # drop probability drop / 32768
        n = x.numel()
        bits = torch.empty((n + 1) // 2, dtype=torch.int32, device=x.device).random_(
            generator=self.generator
        )
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


class ConvClassifier(nn.Module):
    """A named feature extractor followed by ``Flatten`` and one ``Linear`` layer.

    Subclasses build ``features`` (an ``nn.Sequential`` of named layers) and call
    :meth:`_add_classifier`, which sizes the linear layer from the input shape.
    """

    features: nn.Sequential
    classifier: nn.Sequential

    def __init__(self) -> None:
        super().__init__()
        self._register_load_state_dict_pre_hook(_rename_numbered_keys, with_module=True)

    def _add_classifier(self, n_chans: int, n_times: int, n_outputs: int) -> None:
        self.features.eval()  # BatchNorm must not update its running statistics here
        with torch.no_grad():
            out = self.features(torch.zeros(1, 1, n_chans, n_times))
        self.features.train()
        if out.numel() == 0:
            raise ConfigError(f"input of {n_times} samples is too short for {type(self).__name__}")
        self.classifier = nn.Sequential(
            OrderedDict(flatten=nn.Flatten(), linear=nn.Linear(int(out.numel()), n_outputs))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _rename_numbered_keys(
    module: ConvClassifier, state_dict: dict[str, Any], prefix: str, *args: Any
) -> None:
    """Load-time hook: map the numbered keys of weights saved before the layers had names
    (``features.3.weight``, ``classify.1.bias``) onto today's names."""
    old_heads: dict[str, nn.Module] = {"features": module.features, "classify": module.classifier}
    for key in [k for k in state_dict if k.startswith(prefix)]:
        head, _, rest = key[len(prefix) :].partition(".")
        index, _, leaf = rest.partition(".")
        if head in old_heads and index.isdigit():
            names = list(old_heads[head]._modules)
            if int(index) < len(names):
                new_head = "classifier" if head == "classify" else head
                new_key = f"{prefix}{new_head}.{names[int(index)]}.{leaf}"
                state_dict[new_key] = state_dict.pop(key)


class EEGNet(ConvClassifier):
    """EEGNet as the lab specifies it.

    Lawhern, V. J. et al. (2018). EEGNet: a compact convolutional neural network for
    EEG-based brain-computer interfaces. Journal of Neural Engineering 15(5), 056013.

    A temporal convolution, a depthwise convolution across the electrodes, then the lab's
    ``separable`` block: note that the lab's version is a full 32 x 32 x 15 convolution, not
    the depthwise-plus-pointwise pair of the paper.
    """

    def __init__(
        self,
        n_chans: int = 2,
        n_times: int = 750,
        n_outputs: int = 2,
        activation: ActivationClass = nn.ELU,
        dropout: float = 0.25,
        dropout_layer: DropoutLayer = nn.Dropout,
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(
                conv_temporal=nn.Conv2d(1, 16, (1, 51), padding=(0, 25), bias=False),
                bn_temporal=nn.BatchNorm2d(16),
                conv_depthwise=nn.Conv2d(16, 32, (n_chans, 1), groups=16, bias=False),
                bn_depthwise=nn.BatchNorm2d(32),
                act_depthwise=activation(),
                pool_depthwise=nn.AvgPool2d((1, 4)),
                drop_depthwise=dropout_layer(dropout),
                conv_separable=nn.Conv2d(32, 32, (1, 15), padding=(0, 7), bias=False),
                bn_separable=nn.BatchNorm2d(32),
                act_separable=activation(),
                pool_separable=nn.AvgPool2d((1, 8)),
                drop_separable=dropout_layer(dropout),
            )
        )
        self._add_classifier(n_chans, n_times, n_outputs)


class DeepConvNet(ConvClassifier):
    """DeepConvNet as the lab specifies it (filters 25, 50, 100, 200).

    Schirrmeister, R. T. et al. (2017). Deep learning with convolutional neural networks for
    EEG decoding and visualization. Human Brain Mapping 38(11), 5391-5420.
    """

    def __init__(
        self,
        n_chans: int = 2,
        n_times: int = 750,
        n_outputs: int = 2,
        activation: ActivationClass = nn.ELU,
        dropout: float = 0.5,
        dropout_layer: DropoutLayer = nn.Dropout,
        filters: tuple[int, ...] = (25, 50, 100, 200),
    ) -> None:
        super().__init__()
        first = filters[0]
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            conv_temporal=nn.Conv2d(1, first, (1, 5)),
            conv_spatial=nn.Conv2d(first, first, (n_chans, 1)),
            bn_1=nn.BatchNorm2d(first),
            act_1=activation(),
            pool_1=nn.MaxPool2d((1, 2)),
            drop_1=dropout_layer(dropout),
        )
        for block, (c_in, c_out) in enumerate(zip(filters[:-1], filters[1:], strict=True), 2):
            layers[f"conv_{block}"] = nn.Conv2d(c_in, c_out, (1, 5))
            layers[f"bn_{block}"] = nn.BatchNorm2d(c_out)
            layers[f"act_{block}"] = activation()
            layers[f"pool_{block}"] = nn.MaxPool2d((1, 2))
            layers[f"drop_{block}"] = dropout_layer(dropout)
        self.features = nn.Sequential(layers)
        self._add_classifier(n_chans, n_times, n_outputs)


def activation_class(name: str) -> ActivationClass:
    """The ``torch.nn`` activation registered under ``name`` (see :mod:`eegtune.names`)."""
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r}; choose one of: {', '.join(ACTIVATIONS)}")
    spec = ACTIVATIONS[name]
    return partial(getattr(nn, spec.torch_class), **spec.kwargs)


def build_model(
    name: str,
    activation: str = DEFAULT_ACTIVATION,
    dropout: float = 0.25,
    *,
    n_chans: int = 2,
    n_times: int = 750,
    n_outputs: int = 2,
    dropout_layer: DropoutLayer = Dropout,
) -> nn.Module:
    """Build a registered network (``eegnet``, ``deepconvnet``) with a named activation.

    ``dropout_layer`` is the fast CPU :class:`Dropout` by default; pass ``nn.Dropout`` for
    the stock layer (same behaviour, another random stream).

    Raises:
        ConfigError: for an unknown network or activation name, a dropout outside [0, 1), or
            an input too short for the network's pooling.
    """
    if name not in NETWORKS:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(NETWORKS)}")
    act = activation_class(activation)
    if not 0.0 <= dropout <= DROPOUT_MAX:
        raise ConfigError(f"dropout must lie in [0, {DROPOUT_MAX}], got {dropout}")
    network_class = NETWORKS[name].load()
    try:
        model: nn.Module = network_class(
            n_chans=n_chans,
            n_times=n_times,
            n_outputs=n_outputs,
            activation=act,
            dropout=dropout,
            dropout_layer=dropout_layer,
        )
    except RuntimeError as exc:  # a pooling or kernel larger than what is left of the input
        raise ConfigError(
            f"input of {n_chans} channels x {n_times} samples is too small for {name} ({exc})"
        ) from None
    return model


def _fits(name: str, n_chans: int, n_times: int) -> bool:
    try:
        build_model(name, n_chans=n_chans, n_times=n_times)
    except ConfigError:
        return False
    return True


def min_times(name: str, n_chans: int, limit: int = 1 << 16) -> int | None:
    """The fewest samples per trial that network ``name`` accepts (None: none up to limit)."""
    high = 8
    while not _fits(name, n_chans, high):
        if high >= limit:
            return None
        high *= 2
    low = high // 2 if high > 8 else 0  # low does not fit: bisect (low, high]
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if _fits(name, n_chans, mid) else (mid, high)
    return high


def check_input(name: str, data: Dataset) -> None:
    """Refuse, before any training, trials too short for the network's pooling.

    Raises:
        ConfigError: one line with the shortest trial the network accepts.
    """
    shape = data.model_kwargs
    if _fits(name, shape["n_chans"], shape["n_times"]):
        return
    need = min_times(name, shape["n_chans"])
    raise ConfigError(
        f"{data.name}: trials of {shape['n_times']} samples are too short for {name}, which "
        f"needs at least {need} (its pooling); use longer trials (moabb: a longer --tmin/--tmax "
        "window or a higher --resample) or another --model"
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
