"""Homework 2 corpus: wrong implementations as students write them, and correct variants.

The format is that of tests/corpus/hw1_corpus.py: ``WRONG[name] = (edits, lost)`` with
``(grade_id, old, new)`` edits of the solution cells and the tests that must fail on
every seed (no other may); ``CORRECT[name] = edits`` must get every point.
"""
from __future__ import annotations

HW = "hw2_backprop"
SOLUTION_CELLS = ("setup", "chain_rule_example", "sigmoid_neuron_loss", "softmax", "linear", "activations",
                  "numerical_gradient", "two_layer")
SLOW = ("test_two_layer_training",)

_NEURON_LOGS = "    log_x = -softplus_neg\n    log_1mx = -a - softplus_neg\n"
_NEURON_G = "    G = -np.sum(t * log_x + (1 - t) * log_1mx) + 0.5 * alpha * np.sum(w * w)\n"
_NEURON_DG = "    dG_dw = -Z.T @ (t - x) + alpha * w\n"
_SHIFT = "    shifted = x - x.max(axis=1, keepdims=True)\n    e = np.exp(shifted)\n"
_CE_LOG_PROBS = "    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))\n"
_SIGMOID = "    out = np.exp(-np.logaddexp(0, -x)).astype(x.dtype, copy=False)\n"
_NUMGRAD_BODY = ("    grad = np.zeros(x.shape, dtype=float)\n    for ix in np.ndindex(x.shape):\n        old = x[ix]\n"
                 "        x[ix] = old + h\n        f_plus = float(f(x))\n        x[ix] = old - h\n"
                 "        f_minus = float(f(x))\n        x[ix] = old\n        grad[ix] = (f_plus - f_minus) / (2 * h)\n"
                 "    return grad\n")

WRONG = {
    # dz/dy = x^2 - y: the derivative of y^2 taken as y
    "chain_dz_dy": ((("chain_rule_example", "x**2 - 2 * y", "x**2 - y"),), ("test_chain_rule",)),
    # the mean over examples instead of the sum: G only (the gradient is scored on its own)
    "neuron_mean_loss": ((("sigmoid_neuron_loss", _NEURON_G,
                           "    G = -np.mean(t * log_x + (1 - t) * log_1mx) + 0.5 * alpha * np.sum(w * w)\n"),),
                         ("test_sigmoid_neuron_loss",)),
    # log(sigmoid(a)) computed naively: -inf for confidently wrong predictions
    "neuron_naive_log": ((("sigmoid_neuron_loss", _NEURON_LOGS,
                           "    g = 1 / (1 + np.exp(-a))\n    log_x, log_1mx = np.log(g), np.log(1 - g)\n"),),
                         ("test_sigmoid_neuron_loss",)),
    # log(g) with g clipped away from 0 and 1: finite but wrong for large |a|
    "neuron_clipped_log": ((("sigmoid_neuron_loss", _NEURON_LOGS,
                             "    g = np.clip(1 / (1 + np.exp(-a)), 1e-15, 1 - 1e-15)\n"
                             "    log_x, log_1mx = np.log(g), np.log(1 - g)\n"),), ("test_sigmoid_neuron_loss",)),
    # weight decay forgotten in the gradient
    "neuron_grad_no_decay": ((("sigmoid_neuron_loss", _NEURON_DG, "    dG_dw = -Z.T @ (t - x)\n"),),
                             ("test_sigmoid_neuron_grad",)),
    # exp of the raw scores: inf / inf for scores in the hundreds
    "softmax_no_shift": ((("softmax", _SHIFT, "    e = np.exp(x)\n"),), ("test_softmax",)),
    # one maximum for the whole batch: rows far below it underflow to 0 / 0
    "softmax_global_max": ((("softmax", _SHIFT, "    e = np.exp(x - x.max())\n"),), ("test_softmax",)),
    # shifts the caller's array in place
    "softmax_in_place": ((("softmax", _SHIFT, "    x -= x.max(axis=1, keepdims=True)\n    e = np.exp(x)\n"),),
                         ("test_softmax",)),
    # log of the probability: log 0 = -inf when the right class scores far below the best
    "ce_log_of_prob": ((("softmax", _CE_LOG_PROBS,
                         "    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)\n"
                         "    log_probs = np.log(p)\n"),), ("test_softmax_cross_entropy",)),
    # dscores not divided by the batch size
    "ce_no_batch_mean": ((("softmax", "    dscores /= N\n", ""),), ("test_softmax_cross_entropy",)),
    # the one-hot subtraction on every row
    "ce_fancy_index": ((("softmax", "    dscores[np.arange(N), y] -= 1\n", "    dscores[:, y] -= 1\n"),),
                       ("test_softmax_cross_entropy",)),
    # the bias forgotten: the backward, the network and the training are not charged again
    "linear_no_bias": ((("linear", "    out = x @ w.T + b\n", "    out = x @ w.T\n"),), ("test_linear_forward",)),
    # dw transposed, (D, M): adding the weight decay then fails inside the network too (the stated exception)
    "linear_dw_transposed": ((("linear", "    dw = dout.T @ x\n", "    dw = x.T @ dout\n"),),
                             ("test_linear_backward", "test_two_layer_loss")),
    # dw averaged over the batch: only the backward loses, the network of the student's own layers carries it
    "linear_dw_mean": ((("linear", "    dw = dout.T @ x\n", "    dw = dout.T @ x / len(x)\n"),),
                       ("test_linear_backward",)),
    # db averaged over the batch
    "linear_db_mean": ((("linear", "    db = dout.sum(axis=0)\n", "    db = dout.mean(axis=0)\n"),),
                       ("test_linear_backward",)),
    # gradient 1 at x == 0 (the homework and torch use 0)
    "relu_backward_at_zero": ((("activations", "    return dout * (x > 0)\n", "    return dout * (x >= 0)\n"),),
                              ("test_relu",)),
    # ReLU applied to the upstream gradient
    "relu_backward_of_dout": ((("activations", "    return dout * (x > 0)\n", "    return np.maximum(dout, 0)\n"),),
                              ("test_relu",)),
    # zeroes the caller's array in place
    "relu_in_place": ((("activations", "    out = np.maximum(x, 0)\n", "    x[x < 0] = 0\n    out = x\n"),),
                      ("test_relu",)),
    # the textbook formula: e^-x overflows and the tiny values become 0
    "sigmoid_naive": ((("activations", _SIGMOID, "    out = 1 / (1 + np.exp(-x))\n"),), ("test_sigmoid_layer",)),
    # the backward treats the cached output as the input
    "sigmoid_backward_from_input": ((("activations", "    return dout * g * (1 - g)\n",
                                      "    s = 1 / (1 + np.exp(-g))\n    return dout * s * (1 - s)\n"),),
                                    ("test_sigmoid_layer",)),
    # one-sided differences: O(h) error
    "numgrad_one_sided": ((("numerical_gradient",
                            "        x[ix] = old - h\n        f_minus = float(f(x))\n        x[ix] = old\n"
                            "        grad[ix] = (f_plus - f_minus) / (2 * h)\n",
                            "        x[ix] = old\n        f_minus = float(f(x))\n        grad[ix] = (f_plus - f_minus) / h\n"),),
                          ("test_numerical_gradient",)),
    # perturbs x.ravel(), a copy when x is not contiguous: f never sees the change
    "numgrad_ravel": ((("numerical_gradient", _NUMGRAD_BODY,
                        "    grad = np.zeros(x.size)\n    flat = x.ravel()\n    for i in range(flat.size):\n"
                        "        old = flat[i]\n        flat[i] = old + h\n        f_plus = float(f(x))\n"
                        "        flat[i] = old - h\n        f_minus = float(f(x))\n        flat[i] = old\n"
                        "        grad[i] = (f_plus - f_minus) / (2 * h)\n    return grad.reshape(x.shape)\n"),),
                      ("test_numerical_gradient",)),
    # x left at old - h after each entry
    "numgrad_not_restored": ((("numerical_gradient", "        x[ix] = old\n        grad[ix]", "        grad[ix]"),),
                             ("test_numerical_gradient",)),
    # the ReLU's backward skipped in the network
    "two_layer_skips_relu": ((("two_layer", "    dh = relu_backward(da, cache_relu)\n", "    dh = da\n"),),
                             ("test_two_layer_loss",)),
    # weight decay on the biases too
    "two_layer_decays_biases": ((("two_layer", '    grads["W2"] = grads["W2"] + reg * params["W2"]\n',
                                  '    grads["W2"] = grads["W2"] + reg * params["W2"]\n'
                                  '    grads["b1"] = grads["b1"] + reg * params["b1"]\n'),), ("test_two_layer_loss",)),
    # a learning rate a thousand times too small
    "train_tiny_lr": ((("two_layer", "    lr, batch_size, epochs, reg = 0.3, 32, 30, 1e-4\n",
                        "    lr, batch_size, epochs, reg = 0.0003, 32, 30, 1e-4\n"),), ("test_two_layer_training",)),
}

CORRECT = {
    # a sigmoid in two branches (warns on overflow), ReLU's mask with np.where, x.flat in the gradient check
    "branches_and_flat": (
        ("activations", _SIGMOID,
         "    out = np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))\n"),
        ("activations", "    return dout * (x > 0)\n", "    return np.where(x > 0, dout, 0.0)\n"),
        ("numerical_gradient", _NUMGRAD_BODY,
         "    grad = np.zeros(x.shape)\n    for i in range(x.size):\n        old = x.flat[i]\n"
         "        x.flat[i] = old + h\n        fp = f(x)\n        x.flat[i] = old - h\n        fm = f(x)\n"
         "        x.flat[i] = old\n        grad.flat[i] = (fp - fm) / (2 * h)\n    return grad\n"),
    ),
    # a dict as the linear cache: the backward gets the test's tuple first, then its own forward's cache
    "own_cache_layout": (
        ("linear", "    cache = (x, w)  # what linear_backward gets (the tests build the same tuple)\n",
         '    cache = {"x": x, "w": w}\n'),
        ("linear", "    x, w = cache\n", '    x, w = cache["x"], cache["w"]\n'),
    ),
    # log-sum-exp by hand with a one-hot matrix; the neuron's softplus with log1p; a chain rule on plain numbers
    "logsumexp_and_log1p": (
        ("softmax", _CE_LOG_PROBS,
         "    lse = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))\n    log_probs = shifted - lse\n"),
        ("softmax", "    dscores = np.exp(log_probs)\n    dscores[np.arange(N), y] -= 1\n",
         "    onehot = np.eye(scores.shape[1])[y]\n    dscores = np.exp(log_probs) - onehot\n"),
        ("sigmoid_neuron_loss", "    softplus_neg = np.logaddexp(0, -a)  # log(1 + e^-a), never overflows\n",
         "    softplus_neg = np.maximum(-a, 0) + np.log1p(np.exp(-np.abs(a)))\n"),
        ("chain_rule_example", "    t = np.asarray(t, dtype=float)\n", ""),
    ),
    # the network written out without the layer functions, trained with float(loss) and another schedule
    "inline_network": (
        ("two_layer", '    h, cache1 = linear_forward(X, params["W1"], params["b1"])\n'
         "    a, cache_relu = relu_forward(h)\n"
         '    scores, cache2 = linear_forward(a, params["W2"], params["b2"])\n'
         "    data_loss, dscores = softmax_cross_entropy(scores, y)\n    grads = {}\n"
         '    da, grads["W2"], grads["b2"] = linear_backward(dscores, cache2)\n'
         "    dh = relu_backward(da, cache_relu)\n"
         '    _, grads["W1"], grads["b1"] = linear_backward(dh, cache1)\n',
         '    h = X @ params["W1"].T + params["b1"]\n    a = np.maximum(h, 0)\n'
         '    scores = a @ params["W2"].T + params["b2"]\n'
         "    s = scores - scores.max(axis=1, keepdims=True)\n"
         "    p = np.exp(s) / np.exp(s).sum(axis=1, keepdims=True)\n"
         "    data_loss = -np.mean(s[np.arange(len(y)), y] - np.log(np.exp(s).sum(axis=1)))\n"
         "    dscores = p.copy()\n    dscores[np.arange(len(y)), y] -= 1\n    dscores /= len(y)\n"
         '    grads = {"W2": dscores.T @ a, "b2": dscores.sum(axis=0)}\n'
         '    dh = (dscores @ params["W2"]) * (h > 0)\n'
         '    grads["W1"], grads["b1"] = dh.T @ X, dh.sum(axis=0)\n'),
        ("two_layer", "            _, grads = loss(params, X_train[idx], y_train[idx], reg)\n",
         "            value, grads = loss(params, X_train[idx], y_train[idx], reg)\n            value = float(value)\n"),
    ),
}
