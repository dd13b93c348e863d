"""Homework 1 corpus: wrong implementations as students write them, and correct variants.

``WRONG[name] = (edits, lost)``: ``edits`` are ``(grade_id, old, new)`` replacements
in the solution notebook's cells, each breaking one function the way students
do; ``lost`` are the test cells that must fail on every seed (and no other may).
``CORRECT[name] = edits``: other valid code that must get every point.
``SLOW`` tests do not depend on the seed; escape-rate runs take them once.
"""
from __future__ import annotations

HW = "hw1_classifiers"
SOLUTION_CELLS = ("setup", "integral_image", "pnorm", "pairwise_sq_l2", "knn", "histograms", "linear_classifier")
SLOW = ("test_linear_classifier_training",)

_INTEGRAL_RETURN = "    ii[1:, 1:] = image.cumsum(axis=0).cumsum(axis=1)\n    return ii\n"
_INTEGRAL_ZEROS = ("    ii = np.zeros((image.shape[0] + 1, image.shape[1] + 1), "
                   "dtype=np.result_type(image, np.int64))\n")
_PAIRWISE_RETURN = "    return np.maximum(sq_a[:, None] - 2.0 * (A @ B.T) + sq_b[None, :], 0.0)\n"
_ARGSORT = '        nearest = np.argsort(d2, axis=1, kind="stable")[:, :self.k]  # (M, k), nearest first\n'
_VOTES = ("        n_labels = int(self.y_train.max()) + 1\n"
          "        votes = (labels[:, :, None] == np.arange(n_labels)).sum(axis=1)  # (M, n_labels)\n"
          "        return votes.argmax(axis=1)  # the first (smallest) label among equal vote counts\n")
_CHI_TERMS = "    terms = np.divide(num, den, out=np.zeros(num.shape), where=den > 0)\n"
_LOG_PROBS = "    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))\n"
_DW = "    dW = dscores.T @ X / N + reg * W\n"

WRONG = {
    # the zero first row and column forgotten: shape (H, W)
    "integral_no_zero_border": ((("integral_image", _INTEGRAL_ZEROS + _INTEGRAL_RETURN,
                                  "    return image.cumsum(axis=0).cumsum(axis=1)\n"),), ("test_integral_image",)),
    # the table in the image's dtype: uint8 sums wrap around at 256
    "integral_uint8_wraps": ((("integral_image", _INTEGRAL_ZEROS,
                               "    ii = np.zeros((image.shape[0] + 1, image.shape[1] + 1), dtype=image.dtype)\n"),),
                             ("test_integral_image",)),
    # height and width swapped when allocating: fine for square images only
    "integral_swapped_shape": ((("integral_image", _INTEGRAL_ZEROS,
                                 "    ii = np.zeros((image.shape[1] + 1, image.shape[0] + 1))\n"),),
                               ("test_integral_image",)),
    # "L0" as sum(|x| ** 0): 0 ** 0 == 1 counts the zeros too
    "pnorm_l0_counts_zeros": ((("pnorm", "        return np.count_nonzero(a, axis=-1)\n",
                                "        return (a ** p).sum(axis=-1)\n"),), ("test_pnorm",)),
    # no absolute value: odd p and p = inf go wrong on negative entries
    "pnorm_no_abs": ((("pnorm", "    a = np.abs(np.asarray(x, dtype=float))\n",
                       "    a = np.asarray(x, dtype=float)\n"),), ("test_pnorm",)),
    # one norm for the whole array instead of one per row (right for a single vector)
    "pnorm_no_axis": ((("pnorm", "    return (a**p).sum(axis=-1) ** (1.0 / p)\n",
                        "    return (a**p).sum() ** (1.0 / p)\n"),), ("test_pnorm",)),
    # the expansion without clipping: -1e-12 for repeated rows
    "pairwise_no_clip": ((("pairwise_sq_l2", _PAIRWISE_RETURN,
                           "    return sq_a[:, None] - 2.0 * (A @ B.T) + sq_b[None, :]\n"),), ("test_pairwise_sq_l2",)),
    # the cross term's sign flipped; k-NN, run on these distances, is not charged again
    "pairwise_sign": ((("pairwise_sq_l2", _PAIRWISE_RETURN,
                        "    return np.maximum(sq_a[:, None] + 2.0 * (A @ B.T) + sq_b[None, :], 0.0)\n"),),
                      ("test_pairwise_sq_l2",)),
    # right values, one test row at a time
    "pairwise_loop": ((("pairwise_sq_l2",
                        "    sq_a = (A * A).sum(axis=1)\n    sq_b = (B * B).sum(axis=1)\n" + _PAIRWISE_RETURN,
                        "    D2 = np.zeros((len(A), len(B)))\n    for i in range(len(A)):\n"
                        "        D2[i] = ((B - A[i]) ** 2).sum(axis=1)\n    return D2\n"),),
                      ("test_pairwise_vectorised",)),
    # k ignored: the single nearest neighbour decides (both k-NN tests check predict)
    "knn_ignores_k": ((("knn", _ARGSORT, '        nearest = np.argsort(d2, axis=1, kind="stable")[:, :1]\n'),),
                      ("test_knn_predict", "test_knn_ties")),
    # the default (unstable) sort: equal distances come out in any order
    "knn_unstable_sort": ((("knn", _ARGSORT, "        nearest = np.argsort(d2, axis=1)[:, :self.k]\n"),),
                          ("test_knn_ties",)),
    # argpartition picks any k among equal distances
    "knn_argpartition": ((("knn", _ARGSORT,
                           "        nearest = np.argpartition(d2, self.k - 1, axis=1)[:, :self.k]\n"),),
                         ("test_knn_ties",)),
    # Counter.most_common: on equal votes the nearest neighbour's label wins, not the smaller label
    "knn_vote_nearest_first": ((("knn", _VOTES,
                                 "        from collections import Counter\n"
                                 "        return np.array([Counter(row.tolist()).most_common(1)[0][0] "
                                 "for row in labels])\n"),), ("test_knn_ties",)),
    # fit keeps image-shaped training data: (N, 1, 2) points break the distances
    "knn_no_flatten": ((("knn", "        self.X_train = X.reshape(len(X), -1)\n", "        self.X_train = X\n"),),
                       ("test_knn_ties",)),
    # intersection with max instead of min
    "intersection_max": ((("histograms", "    return 1.0 - np.minimum(h1, h2).sum(axis=-1)\n",
                           "    return 1.0 - np.maximum(h1, h2).sum(axis=-1)\n"),), ("test_histogram_intersection",)),
    # sums over every axis: right for one pair of histograms only
    "intersection_no_axis": ((("histograms", "    return 1.0 - np.minimum(h1, h2).sum(axis=-1)\n",
                               "    return 1.0 - np.minimum(h1, h2).sum()\n"),), ("test_histogram_intersection",)),
    # 0/0 = nan for bins empty in both histograms
    "chi_nan": ((("histograms", _CHI_TERMS, "    terms = num / den\n"),), ("test_chi_squared",)),
    # divides by h1 only
    "chi_divides_by_h1": ((("histograms", _CHI_TERMS,
                            "    terms = np.divide(num, h1, out=np.zeros(num.shape), where=h1 > 0)\n"),),
                          ("test_chi_squared",)),
    # exp of the raw scores: overflows for scores in the thousands
    "softmax_loss_no_shift": ((("linear_classifier", "    shifted = scores - scores.max(axis=1, keepdims=True)\n",
                                "    shifted = scores\n"),), ("test_softmax_loss",)),
    # log of the probability: 0 (then -inf) when the right class scores far below the best
    "softmax_loss_log_of_prob": ((("linear_classifier", _LOG_PROBS,
                                   "    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)\n"
                                   "    log_probs = np.log(probs)\n"),), ("test_softmax_loss",)),
    # dW summed over the batch instead of averaged
    "softmax_loss_dw_sum": ((("linear_classifier", _DW, "    dW = dscores.T @ X + reg * W\n"),), ("test_softmax_loss",)),
    # weight decay left out of the gradient
    "softmax_loss_dw_no_reg": ((("linear_classifier", _DW, "    dW = dscores.T @ X / N\n"),), ("test_softmax_loss",)),
    # the one-hot subtraction on every row: dscores[:, y] hits all rows
    "softmax_loss_fancy_index": ((("linear_classifier", "    dscores[np.arange(N), y] -= 1\n",
                                   "    dscores[:, y] -= 1\n"),), ("test_softmax_loss",)),
    # too few steps: far from the accuracy target
    "train_three_steps": ((("linear_classifier", "    for _ in range(300):\n", "    for _ in range(3):\n"),),
                          ("test_linear_classifier_training",)),
}

CORRECT = {
    # broadcasting instead of the expansion (exact zeros, no clip needed); pnorm's count with !=
    "broadcast_distances": (
        ("pairwise_sq_l2", "    sq_a = (A * A).sum(axis=1)\n    sq_b = (B * B).sum(axis=1)\n" + _PAIRWISE_RETURN,
         "    return ((A[:, None, :] - B[None, :, :]) ** 2).sum(axis=-1)\n"),
        ("pnorm", "        return np.count_nonzero(a, axis=-1)\n", "        return (a != 0).sum(axis=-1)\n"),
    ),
    # a loop over test rows in predict, mergesort, np.bincount; a padded integral image
    "loops_and_bincount": (
        ("knn", _ARGSORT + "        labels = self.y_train[nearest]\n" + _VOTES,
         "        out = []\n        n_labels = int(self.y_train.max()) + 1\n"
         "        for row in d2:\n            nearest = np.argsort(row, kind=\"mergesort\")[:self.k]\n"
         "            out.append(np.bincount(self.y_train[nearest], minlength=n_labels).argmax())\n"
         "        return np.array(out)\n"),
        ("integral_image", _INTEGRAL_ZEROS + _INTEGRAL_RETURN,
         "    return np.pad(np.cumsum(np.cumsum(image, axis=0), axis=1), ((1, 0), (1, 0)))\n"),
    ),
    # np.where with a division that warns on empty bins; a one-hot matrix and log-sum-exp for the loss
    "where_and_logsumexp": (
        ("histograms", _CHI_TERMS, "    terms = np.where(den > 0, num / den, 0.0)\n"),
        ("linear_classifier", _LOG_PROBS,
         "    m = shifted.max(axis=1, keepdims=True)\n"
         "    log_probs = shifted - (m + np.log(np.sum(np.exp(shifted - m), axis=1, keepdims=True)))\n"),
        ("linear_classifier", "    dscores = np.exp(log_probs)\n    dscores[np.arange(N), y] -= 1\n",
         "    onehot = np.zeros_like(scores)\n    onehot[np.arange(N), y] = 1.0\n"
         "    dscores = np.exp(log_probs) - onehot\n"),
    ),
    # float32 would lose the digits' accuracy; instead a learning-rate schedule and a Python float loss
    "other_training_loop": (
        ("linear_classifier", "    for _ in range(300):\n        _, dW = loss(W, X, y, 1e-4)\n        W = W - 0.5 * dW\n",
         "    for step in range(400):\n        value, dW = loss(W, X, y, 1e-4)\n        value = float(value)\n"
         "        W -= (0.8 if step < 200 else 0.3) * dW\n"),
        ("histograms", "    return 1.0 - np.minimum(h1, h2).sum(axis=-1)\n",
         "    return 1.0 - np.sum(np.minimum(h1, h2), axis=-1)\n"),
    ),
}

# Wrong cases that change the process they run in (they patch coursekit), so only the sandboxed
# grader, which gives every submission a process of its own, can judge them; never run in-process.
TAMPERING = {
    # a loop over the test rows, and the kernel's step counter replaced so that it always reports 0 steps
    "pairwise_loop_forged_counter": ((("pairwise_sq_l2",
                                       "    sq_a = (A * A).sum(axis=1)\n    sq_b = (B * B).sum(axis=1)\n" + _PAIRWISE_RETURN,
                                       "    D2 = np.zeros((len(A), len(B)))\n    for i in range(len(A)):\n"
                                       "        D2[i] = ((B - A[i]) ** 2).sum(axis=1)\n    return D2\n"
                                       "import coursekit.checks as _checks\n"
                                       "_checks.count_python_events = lambda fn, *a, **k: (fn(*a, **k), 0)\n"),),
                                     ("test_pairwise_vectorised",)),
}
