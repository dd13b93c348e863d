"""CNN architectures from the course (section 7 of the syllabus), as ``torch.nn.Module``.

- :class:`LeNet5`: conv-pool-conv-pool-FC, 6-16-120-84-10, 28x28 or 32x32 input.
- :class:`SmallAlexNet`, :class:`VGG`: AlexNet- and VGG-style nets for 32x32 images.
- :class:`BasicBlock`, :class:`Bottleneck`, :class:`ResNet`, :func:`resnet18_small`.
- :func:`alexnet`: the full-size AlexNet of the syllabus's table (227x227x3 input,
  one tower with the paper's channel counts, about 62M parameters).
- :func:`build_model`: the name -> constructor registry the command line uses.

Layers carry the names the course's tables use (``conv1``, ``pool1``, ``fc6``...),
so :func:`coursekit.nn.summary.summary` prints rows a reader can match to the book.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Sequence

import torch
from torch import nn

from coursekit import arith

__all__ = [
    "LeNet5",
    "SmallAlexNet",
    "VGG",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "resnet18_small",
    "alexnet",
    "MODELS",
    "build_model",
]


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    raise ValueError(f"activation must be 'relu' or 'tanh', got {name!r}")


def _pool(name: str, kernel: int = 2, stride: int | None = None) -> nn.Module:
    if name == "max":
        return nn.MaxPool2d(kernel, stride)
    if name == "avg":
        return nn.AvgPool2d(kernel, stride)
    raise ValueError(f"pool must be 'max' or 'avg', got {name!r}")


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998): 6 and 16 5x5 filters, then 120-84-classes.

    For 32x32 input the first conv has no padding (32 -> 28, as in the paper);
    for 28x28 input (MNIST as shipped) it pads by 2 so every later shape is the
    paper's: 6x28x28 -> pool 6x14x14 -> 16x10x10 -> pool 16x5x5 -> 400 -> 120 -> 84.

    Parameters
    ----------
    in_channels : int
    num_classes : int
    input_size : {28, 32}
    activation : {"relu", "tanh"}
        ``"tanh"`` with ``pool="avg"`` is close to the 1998 network.
    pool : {"max", "avg"}
    batch_norm : bool
        Batch norm after each conv (before the non-linearity).
    dropout : float
        Probability to drop before each hidden FC layer's output (0: none).

    Shapes
    ------
    x: (N, in_channels, input_size, input_size) -> logits: (N, num_classes)
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28, *,
                 activation: str = "relu", pool: str = "max", batch_norm: bool = False,
                 dropout: float = 0.0):
        super().__init__()
        if input_size not in (28, 32):
            raise ValueError(f"LeNet5: input_size must be 28 or 32, got {input_size} (resize the images)")
        pad = 2 if input_size == 28 else 0
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 6, 5, padding=pad, bias=not batch_norm)),
            *([("bn1", nn.BatchNorm2d(6))] if batch_norm else []),
            ("act1", _activation(activation)),
            ("pool1", _pool(pool)),
            ("conv2", nn.Conv2d(6, 16, 5, bias=not batch_norm)),
            *([("bn2", nn.BatchNorm2d(16))] if batch_norm else []),
            ("act2", _activation(activation)),
            ("pool2", _pool(pool)),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("fc3", nn.Linear(16 * 5 * 5, 120)),
            ("act3", _activation(activation)),
            *([("drop3", nn.Dropout(dropout))] if dropout else []),
            ("fc4", nn.Linear(120, 84)),
            ("act4", _activation(activation)),
            *([("drop4", nn.Dropout(dropout))] if dropout else []),
            ("fc5", nn.Linear(84, num_classes)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn_relu(in_ch: int, out_ch: int, kernel: int, padding: int, batch_norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, kernel, padding=padding, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_ch))
    layers.append(nn.ReLU(inplace=True))
    return layers


class SmallAlexNet(nn.Module):
    """An AlexNet-shaped net for 32x32 images: five convs, three max pools, three FCs.

    Same pattern as :func:`alexnet` (big filters first, then 3x3, pooling after
    conv1, conv2 and conv5, dropout in the classifier), scaled to CIFAR-sized inputs:
    conv 64 5x5 -> pool -> conv 192 5x5 -> pool -> conv 384, 256, 256 3x3 -> pool
    -> FC 512 -> FC 256 -> classes, times ``width``.

    Shapes
    ------
    x: (N, in_channels, S, S) with S >= 8 -> logits: (N, num_classes)
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32, *,
                 width: float = 1.0, batch_norm: bool = False, dropout: float = 0.5):
        super().__init__()
        if input_size < 8:
            raise ValueError(f"SmallAlexNet: input_size must be >= 8, got {input_size}")
        c = [max(1, int(round(k * width))) for k in (64, 192, 384, 256, 256, 512, 256)]
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, c[0], 5, 2, batch_norm), nn.MaxPool2d(2),
            *_conv_bn_relu(c[0], c[1], 5, 2, batch_norm), nn.MaxPool2d(2),
            *_conv_bn_relu(c[1], c[2], 3, 1, batch_norm),
            *_conv_bn_relu(c[2], c[3], 3, 1, batch_norm),
            *_conv_bn_relu(c[3], c[4], 3, 1, batch_norm), nn.MaxPool2d(2),
        )
        side = input_size // 8
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout), nn.Linear(c[4] * side * side, c[5]), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(c[5], c[6]), nn.ReLU(inplace=True),
            nn.Linear(c[6], num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


VGG_CONFIGS: dict[str, list[int | str]] = {
    # "M" is a 2x2 max pool; numbers are 3x3 conv widths (stride 1, pad 1).
    "vgg_small": [32, 32, "M", 64, 64, "M", 128, 128, "M"],
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """A VGG-style net: stacks of 3x3 convs separated by 2x2 max pools.

    Parameters
    ----------
    config : str or list
        A key of ``VGG_CONFIGS`` or a list of conv widths and ``"M"`` (pool).
    width : float
        Multiplies every conv width.
    batch_norm, dropout : as in the other models.

    Notes
    -----
    The conv stack ends in a global average pool, so any input at least
    ``2 ** pools`` pixels wide works; ``x: (N, C, H, W) -> (N, num_classes)``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, input_size: int = 32, *,
                 config: str | Sequence[int | str] = "vgg_small", width: float = 1.0,
                 batch_norm: bool = True, dropout: float = 0.3, hidden: int = 256):
        super().__init__()
        cfg = VGG_CONFIGS[config] if isinstance(config, str) else list(config)
        pools = sum(1 for v in cfg if v == "M")
        if input_size < 2 ** pools:
            raise ValueError(f"VGG: input_size {input_size} is too small for {pools} pools")
        layers: list[nn.Module] = []
        ch = in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                out = max(1, int(round(int(v) * width)))
                layers += _conv_bn_relu(ch, out, 3, 1, batch_norm)
                ch = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(ch, hidden), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class BasicBlock(nn.Module):
    """ResNet basic block (ResNet-18/34): two 3x3 convs and an identity shortcut.

    ``out = relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``; the shortcut is a
    1x1 conv with stride when the shape changes.
    ``x: (N, in_planes, H, W) -> (N, planes, H / stride, W / stride)``.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, *, batch_norm: bool = True):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=not batch_norm)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=not batch_norm)
        self.bn2 = norm(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.relu2 = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=not batch_norm), norm(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet bottleneck block (ResNet-50/101/152): 1x1 reduce, 3x3, 1x1 expand by 4.

    ``x: (N, in_planes, H, W) -> (N, 4 * planes, H / stride, W / stride)``.
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, *, batch_norm: bool = True):
        super().__init__()
        norm = (lambda c: nn.BatchNorm2d(c)) if batch_norm else (lambda c: nn.Identity())
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=not batch_norm)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=not batch_norm)
        self.bn2 = norm(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=not batch_norm)
        self.bn3 = norm(out_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.relu2 = nn.ReLU(inplace=True)
        self.relu3 = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=not batch_norm),
                                          norm(out_planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu3(out + self.shortcut(x))


class ResNet(nn.Module):
    """A ResNet for small images: 3x3 stem (no stride, no pool), four stages, global pool.

    Parameters
    ----------
    block : BasicBlock or Bottleneck
    layers : four ints, blocks per stage ((2, 2, 2, 2) is ResNet-18)
    width : int
        Channels of the first stage; stages have width, 2w, 4w, 8w (x expansion).
    dropout : float
        Dropout before the final FC layer.

    Notes
    -----
    ``x: (N, in_channels, H, W) -> (N, num_classes)``; 32x32 input ends 4x4 before the pool.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int], *,
                 in_channels: int = 3, num_classes: int = 10, width: int = 64,
                 batch_norm: bool = True, dropout: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(in_channels, width, 3, 1, batch_norm))
        stages = []
        in_planes = width
        for i, n in enumerate(layers):
            planes = width * 2 ** i
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(in_planes, planes, stride, batch_norm=batch_norm))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.dropout(self.flatten(self.pool(x))))


def resnet18_small(width: int = 16, in_channels: int = 3, num_classes: int = 10, *,
                   batch_norm: bool = True, dropout: float = 0.0, input_size: int | None = None) -> ResNet:
    """ResNet-18 layout (basic blocks, 2-2-2-2) for 32x32 images with a chosen base width.

    ``width=64`` is the usual CIFAR ResNet-18 (about 11M parameters); the default
    16 (about 0.7M) trains on a laptop CPU. ``input_size`` is accepted for the
    registry and not needed (the net ends in a global average pool).
    """
    return ResNet(BasicBlock, (2, 2, 2, 2), in_channels=in_channels, num_classes=num_classes,
                  width=width, batch_norm=batch_norm, dropout=dropout)


# The syllabus's AlexNet, as a hand spec for coursekit.arith.describe and as a module.
ALEXNET_SPEC = [
    arith.Conv(96, 11, stride=4, padding=0, name="conv1"),
    arith.Pool(3, 2, name="pool1"),
    arith.Conv(256, 5, padding=2, name="conv2"),
    arith.Pool(3, 2, name="pool2"),
    arith.Conv(384, 3, padding=1, name="conv3"),
    arith.Conv(384, 3, padding=1, name="conv4"),
    arith.Conv(256, 3, padding=1, name="conv5"),
    arith.Pool(3, 2, name="pool3"),
    arith.Dense(4096, name="fc6"),
    arith.Dense(4096, name="fc7"),
    arith.Dense(1000, name="fc8"),
]


class AlexNet(nn.Module):
    """Full-size AlexNet (Krizhevsky et al. 2012), one tower, the syllabus's table.

    227x227x3 -> conv1 96 11x11 s4 -> 55x55x96 -> pool1 3/2 -> 27x27x96 -> norm1
    -> conv2 256 5x5 p2 -> 27x27x256 -> pool2 -> 13x13x256 -> norm2
    -> conv3 384, conv4 384, conv5 256 (3x3 p1) -> 13x13x256 -> pool3 -> 6x6x256
    -> fc6 4096 -> fc7 4096 -> fc8 classes. 62,378,344 parameters with 1000 classes.

    The paper split conv2, conv4, conv5 over two GPUs (each filter saw half the
    channels), which has fewer parameters; this single-tower version has the
    table's channel counts with full connections. ``norm`` is local response
    normalisation (size 5, alpha 1e-4, beta 0.75, k 2), as in the paper.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 1000, *, dropout: float = 0.5,
                 lrn: bool = True):
        super().__init__()
        norm = (lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)) if lrn else nn.Identity
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, 96, 11, stride=4)), ("relu1", nn.ReLU(inplace=True)),
            ("pool1", nn.MaxPool2d(3, 2)), ("norm1", norm()),
            ("conv2", nn.Conv2d(96, 256, 5, padding=2)), ("relu2", nn.ReLU(inplace=True)),
            ("pool2", nn.MaxPool2d(3, 2)), ("norm2", norm()),
            ("conv3", nn.Conv2d(256, 384, 3, padding=1)), ("relu3", nn.ReLU(inplace=True)),
            ("conv4", nn.Conv2d(384, 384, 3, padding=1)), ("relu4", nn.ReLU(inplace=True)),
            ("conv5", nn.Conv2d(384, 256, 3, padding=1)), ("relu5", nn.ReLU(inplace=True)),
            ("pool3", nn.MaxPool2d(3, 2)),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()),
            ("drop6", nn.Dropout(dropout)), ("fc6", nn.Linear(256 * 6 * 6, 4096)), ("relu6", nn.ReLU(inplace=True)),
            ("drop7", nn.Dropout(dropout)), ("fc7", nn.Linear(4096, 4096)), ("relu7", nn.ReLU(inplace=True)),
            ("fc8", nn.Linear(4096, num_classes)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def alexnet(in_channels: int = 3, num_classes: int = 1000, *, dropout: float = 0.5, lrn: bool = True,
            input_size: int = 227) -> AlexNet:
    """The syllabus's AlexNet; input must be ``(N, in_channels, 227, 227)``."""
    if input_size != 227:
        raise ValueError(f"alexnet: the full-size AlexNet needs 227x227 input, got {input_size}x{input_size} "
                         "(use alexnet_small for 32x32 images)")
    return AlexNet(in_channels, num_classes, dropout=dropout, lrn=lrn)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet5": LeNet5,
    "alexnet_small": SmallAlexNet,
    "vgg_small": VGG,
    "resnet18_small": resnet18_small,
    "alexnet": alexnet,
}


def build_model(name: str, *, in_channels: int = 3, num_classes: int = 10, input_size: int = 32, **kw) -> nn.Module:
    """Build a model of the registry by name.

    Parameters
    ----------
    name : str
        One of ``MODELS``: lenet5, alexnet_small, vgg_small, resnet18_small, alexnet.
    in_channels, num_classes, input_size : int
        The data's channels, classes and (square) image side.
    **kw
        Passed to the model (``batch_norm``, ``dropout``, ``width``, ...).

    Raises
    ------
    ValueError
        For an unknown name (listing the known ones) or an input the model cannot take.
    """
    try:
        ctor = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    return ctor(in_channels=in_channels, num_classes=num_classes, input_size=input_size, **kw)
