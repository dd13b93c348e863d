"""Output shapes of the torch models, and the AlexNet of the syllabus's table."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from coursekit.nn.models import (MODELS, AlexNet, BasicBlock, Bottleneck, LeNet5, SmallAlexNet, VGG,  # noqa: E402
                                 alexnet, build_model, resnet18_small)


@pytest.mark.parametrize("input_size", [28, 32])
@pytest.mark.parametrize("activation,pool", [("relu", "max"), ("tanh", "avg")])
@pytest.mark.parametrize("batch_norm,dropout", [(False, 0.0), (True, 0.5)])
def test_lenet5_output_shape(input_size, activation, pool, batch_norm, dropout):
    model = LeNet5(1, 10, input_size, activation=activation, pool=pool, batch_norm=batch_norm, dropout=dropout)
    out = model(torch.randn(3, 1, input_size, input_size))
    assert out.shape == (3, 10), f"LeNet5({input_size}, {activation}, {pool}): logits {tuple(out.shape)}"
    # The paper's shapes hold for both input sizes: 16x5x5 before the classifier.
    assert model.features(torch.randn(1, 1, input_size, input_size)).shape == (1, 16, 5, 5)


def test_lenet5_parameter_count_matches_the_hand_count():
    # conv1 6*(5*5*1)+6, conv2 16*(5*5*6)+16, fc 400*120+120, 120*84+84, 84*10+10
    expected = 156 + 2416 + 48120 + 10164 + 850
    got = sum(p.numel() for p in LeNet5(1, 10, 28).parameters())
    assert got == expected, f"LeNet5 has {got} parameters, the hand count is {expected}"


@pytest.mark.parametrize("ctor", [
    lambda: SmallAlexNet(3, 10, 32, width=0.25),
    lambda: SmallAlexNet(1, 7, 28, width=0.25, batch_norm=True),
    lambda: VGG(3, 10, 32, width=0.5),
    lambda: VGG(1, 10, 28, config=[8, "M", 16, "M"], batch_norm=False),
    lambda: resnet18_small(width=8, in_channels=3, num_classes=10),
    lambda: resnet18_small(width=4, in_channels=1, num_classes=5, batch_norm=False, dropout=0.2),
], ids=["alexnet_small", "alexnet_small-gray", "vgg_small", "vgg-custom", "resnet18_small", "resnet18-gray"])
def test_small_models_output_shape(ctor):
    model = ctor()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    size = 28 if first.in_channels == 1 else 32
    out = model(torch.randn(2, first.in_channels, size, size))
    assert out.shape == (2, last.out_features), f"{type(model).__name__}: logits {tuple(out.shape)}"


@pytest.mark.parametrize("stride", [1, 2])
def test_residual_blocks_shapes(stride):
    x = torch.randn(2, 16, 8, 8)
    assert BasicBlock(16, 32, stride)(x).shape == (2, 32, 8 // stride, 8 // stride)
    assert BasicBlock(16, 16, 1)(x).shape == x.shape  # identity shortcut
    assert Bottleneck(16, 8, stride)(x).shape == (2, 32, 8 // stride, 8 // stride)  # expansion 4


def test_resnet18_small_has_the_resnet18_layout():
    model = resnet18_small(width=8)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 8, f"ResNet-18 has 2-2-2-2 = 8 basic blocks, got {len(blocks)}"
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 17, f"stem + 16 3x3 convs in the blocks, got {len(convs)}"


@pytest.fixture(scope="module")
def big_alexnet():
    torch.manual_seed(0)
    return alexnet()


def test_alexnet_follows_the_syllabus_table(big_alexnet):
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n, m in big_alexnet.named_modules() if n.split(".")[-1] in
             ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool3", "fc6", "fc7", "fc8")]
    with torch.no_grad():
        out = big_alexnet.eval()(torch.randn(1, 3, 227, 227))
    for h in hooks:
        h.remove()
    expected = {"conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27), "pool2": (256, 13, 13),
                "conv3": (384, 13, 13), "conv4": (384, 13, 13), "conv5": (256, 13, 13), "pool3": (256, 6, 6),
                "fc6": (4096,), "fc7": (4096,), "fc8": (1000,)}
    got = {k.split(".")[-1]: v for k, v in shapes.items()}
    assert got == expected
    assert out.shape == (1, 1000)
    n = sum(p.numel() for p in big_alexnet.parameters())
    assert 60e6 <= n <= 63e6, f"AlexNet should have about 60M parameters, has {n:,}"
    assert big_alexnet.features.conv1.weight.numel() + big_alexnet.features.conv1.bias.numel() == 34_944


def test_alexnet_refuses_other_input_sizes():
    with pytest.raises(ValueError, match="227x227"):
        alexnet(input_size=32)


def test_build_model_registry():
    assert set(MODELS) == {"lenet5", "alexnet_small", "vgg_small", "resnet18_small", "alexnet"}
    m = build_model("lenet5", in_channels=1, num_classes=10, input_size=28, batch_norm=True)
    assert isinstance(m, LeNet5)
    assert isinstance(build_model("alexnet", num_classes=1000, input_size=227), AlexNet)
    with pytest.raises(ValueError, match="unknown model 'lenet6'.*lenet5"):
        build_model("lenet6")
    with pytest.raises(ValueError, match="input_size must be 28 or 32"):
        build_model("lenet5", input_size=8)
