"""The lab networks: layer shapes, parameter counts and the activation registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from eegtune.errors import ConfigError
from eegtune.models.networks import DeepConvNet, EEGNet, build_model, count_parameters

# Parameter counts worked out by hand from the lab spec in DESIGN.md.
EEGNET_PARAMS = (16 * 51) + 2 * 16 + (32 * 2) + 2 * 32 + (32 * 32 * 15) + 2 * 32 + (736 * 2 + 2)
DEEPCONV_PARAMS = (
    (25 * 5 + 25)
    + (25 * 25 * 2 + 25)
    + 2 * 25
    + (50 * 25 * 5 + 50)
    + 2 * 50
    + (100 * 50 * 5 + 100)
    + 2 * 100
    + (200 * 100 * 5 + 200)
    + 2 * 200
    + (8600 * 2 + 2)
)


def _linear(model: nn.Module) -> nn.Linear:
    return next(m for m in model.modules() if isinstance(m, nn.Linear))


def test_eegnet_matches_lab_spec() -> None:
    model = build_model("eegnet", "relu", 0.25)
    assert isinstance(model, EEGNet)
    assert (_linear(model).in_features, _linear(model).out_features) == (736, 2)
    assert count_parameters(model) == EEGNET_PARAMS == 17874
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 51), (2, 1), (1, 15)]
    assert [c.padding for c in convs] == [(0, 25), (0, 0), (0, 7)]
    assert convs[1].groups == 16 and all(c.bias is None for c in convs)
    pools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d)]
    assert [p.kernel_size for p in pools] == [(1, 4), (1, 8)]


def test_deepconvnet_matches_lab_spec() -> None:
    model = build_model("deepconvnet", "relu", 0.5)
    assert isinstance(model, DeepConvNet)
    assert (_linear(model).in_features, _linear(model).out_features) == (8600, 2)
    assert count_parameters(model) == DEEPCONV_PARAMS == 150977
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [25, 25, 50, 100, 200]
    assert [c.kernel_size for c in convs] == [(1, 5), (2, 1), (1, 5), (1, 5), (1, 5)]
    assert len([m for m in model.modules() if isinstance(m, nn.MaxPool2d)]) == 4


@pytest.mark.parametrize("name", ["eegnet", "deepconvnet"])
def test_batchnorm_dropout_and_forward(name: str) -> None:
    model = build_model(name, "elu", 0.4)
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert bn.eps == 1e-5 and bn.momentum == 0.1
        assert torch.all(bn.running_mean == 0)  # shape inference did not touch statistics
    assert all(d.p == 0.4 for d in model.modules() if isinstance(d, nn.Dropout))
    assert model(torch.randn(3, 1, 2, 750)).shape == (3, 2)


@pytest.mark.parametrize(
    ("activation", "cls", "check"),
    [
        ("relu", nn.ReLU, lambda m: True),
        ("leaky_relu", nn.LeakyReLU, lambda m: m.negative_slope == 0.01),
        ("elu", nn.ELU, lambda m: m.alpha == 1.0),
    ],
)
@pytest.mark.parametrize("name", ["eegnet", "deepconvnet"])
def test_activation_registry(name, activation, cls, check) -> None:
    model = build_model(name, activation)
    acts = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.ELU))]
    assert acts and all(type(m) is cls and check(m) for m in acts)


@pytest.mark.parametrize("name", ["eegnet", "deepconvnet"])
def test_classifier_size_follows_the_input_shape(name: str) -> None:
    model = build_model(name, n_chans=3, n_times=500, n_outputs=4)
    assert model(torch.randn(2, 1, 3, 500)).shape == (2, 4)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "resnet"}, "unknown model 'resnet'"),
        ({"name": "eegnet", "activation": "gelu"}, "unknown activation 'gelu'"),
        ({"name": "eegnet", "dropout": 1.0}, "dropout must lie in [0, 0.95]"),
    ],
)
def test_build_model_rejects_bad_names(kwargs, fragment) -> None:
    with pytest.raises(ConfigError) as info:
        build_model(**kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("name", "layers"),
    [
        ("eegnet", ["conv_temporal", "conv_depthwise", "conv_separable", "drop_separable"]),
        ("deepconvnet", ["conv_temporal", "conv_spatial", "conv_4", "drop_4"]),
    ],
)
def test_layers_have_names(name: str, layers: list[str]) -> None:
    keys = build_model(name).state_dict()
    children = dict(build_model(name).features.named_children())
    assert all(layer in children for layer in layers)
    assert "classifier.linear.weight" in keys and "features.conv_temporal.weight" in keys


@pytest.mark.parametrize("name", ["eegnet", "deepconvnet"])
def test_weights_saved_with_numbered_layer_names_still_load(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    trained = build_model(name).eval()
    order = list(trained.features._modules)
    # The layout of weights saved before the layers had names: features.<i>, classify.1.
    old = {}
    for key, value in trained.state_dict().items():
        head, layer, leaf = key.split(".", 2)
        index = order.index(layer) if head == "features" else 1
        old[f"{'features' if head == 'features' else 'classify'}.{index}.{leaf}"] = value
    torch.save(old, tmp_path / "old.pt")
    torch.manual_seed(1)
    fresh = build_model(name).eval()
    fresh.load_state_dict(torch.load(tmp_path / "old.pt"))
    x = torch.randn(4, 1, 2, 750)
    torch.testing.assert_close(fresh(x), trained(x))


def test_weights_of_another_network_are_refused_naming_the_keys() -> None:
    with pytest.raises(RuntimeError, match="Missing key"):
        build_model("eegnet").load_state_dict(build_model("deepconvnet").state_dict())


def test_fast_dropout_is_injected_by_build_model_not_hard_wired() -> None:
    from eegtune.models.networks import Dropout

    built = [m for m in build_model("eegnet").modules() if isinstance(m, nn.Dropout)]
    plain = [m for m in EEGNet().modules() if isinstance(m, nn.Dropout)]
    assert len(built) == len(plain) == 2
    assert all(type(m) is Dropout for m in built)
    assert all(type(m) is nn.Dropout for m in plain)
    stock = build_model("deepconvnet", dropout_layer=nn.Dropout)
    assert all(type(m) is nn.Dropout for m in stock.modules() if isinstance(m, nn.Dropout))


def test_input_too_short_for_the_pooling_is_one_line() -> None:
    with pytest.raises(ConfigError, match="too small for deepconvnet"):
        build_model("deepconvnet", n_times=20)
