"""numpy layers: each forward returns ``(out, cache)``; each backward takes ``(dout, cache)``.

Conventions follow PyTorch so that every layer can be checked against
``torch.nn.functional``: NCHW images, linear weights of shape (out, in), dropout's
``p`` is the probability to drop, batch-norm momentum 0.1 with the unbiased
variance in the running estimate. Outputs keep the input's float dtype.
"""

from .activations import (
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from .batchnorm import (
    batchnorm_backward,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from .conv import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from .dropout import dropout_backward, dropout_forward
from .linear import linear_backward, linear_forward
from .losses import sigmoid_binary_cross_entropy, softmax, softmax_cross_entropy
from .pooling import (
    avgpool2d_backward,
    avgpool2d_forward,
    global_avgpool_backward,
    global_avgpool_forward,
    maxpool2d_backward,
    maxpool2d_forward,
)
from .signal import convolve2d, correlate2d

__all__ = [
    "linear_forward", "linear_backward",
    "relu_forward", "relu_backward", "sigmoid", "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "softmax", "softmax_cross_entropy", "sigmoid_binary_cross_entropy",
    "conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "conv2d_backward_naive",
    "convolve2d", "correlate2d",
    "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
    "global_avgpool_forward", "global_avgpool_backward",
    "batchnorm_forward", "batchnorm_backward", "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    "dropout_forward", "dropout_backward",
]  # fmt: skip
