"""Homework 4's corpus: real students' bugs, each with the graded cells it must fail, and correct variants.

Each case edits the solution notebook's solution cells (``(cell, old, new)``). ``lost`` follows the
notebook's credit rule: a forward bug costs the forward test only (the backward tests build their
caches from the prescribed form, spatial batch norm accepts the student's own batch norm per channel).
"""
from __future__ import annotations

try:
    from corpus.hw45_inprocess import Case
except ImportError:  # run as a script from benchmarks/
    from hw45_inprocess import Case

HW = "hw4_batchnorm"
TRAIN, EVAL, BACK = "test_batchnorm_forward_train", "test_batchnorm_forward_eval", "test_batchnorm_backward"
SPATIAL, DROP_F, DROP_B, CONVNET = "test_spatial_batchnorm", "test_dropout_forward", "test_dropout_backward", \
    "test_convnet_training"
POINTS = {TRAIN: 2, EVAL: 1, BACK: 3, SPATIAL: 2, DROP_F: 2, DROP_B: 1, CONVNET: 3}
SLOW = (CONVNET,)  # trains a network: deterministic, left out of the escape-rate runs

NORM = "    x_hat = (x - mean) / np.sqrt(var + eps)\n"
BN_TRAIN_STATS = "        mean = x.mean(axis=0)\n        var = x.var(axis=0)\n"
BN_BACK_DX = "        dx = inv_std / N * (N * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))\n"

WRONG = [
    Case("bn_running_stats_in_training", (("batchnorm", NORM, "    x_hat = (x - running_mean) / np.sqrt(running_var + eps)\n"),),
         (TRAIN,), "normalises with the running statistics while training"),
    Case("bn_biased_running_var", (("batchnorm", "momentum * var * N / (N - 1)", "momentum * var"),), (TRAIN,),
         "updates the running variance with the biased batch variance"),
    Case("bn_momentum_swapped", (("batchnorm", "new_mean = (1 - momentum) * running_mean + momentum * mean",
                                  "new_mean = momentum * running_mean + (1 - momentum) * mean"),), (TRAIN,),
         "weights old and new running means the wrong way round"),
    Case("bn_eps_outside_sqrt", (("batchnorm", NORM, "    x_hat = (x - mean) / (np.sqrt(var) + eps)\n"),), (TRAIN, EVAL),
         "adds eps after the square root"),
    Case("bn_eval_uses_batch_stats", (("batchnorm", "        mean, var = running_mean, running_var\n",
                                       "        mean, var = x.mean(axis=0), x.var(axis=0)\n"),), (EVAL,),
         "normalises with the batch statistics in evaluation mode"),
    Case("bn_unbiased_var_in_normalisation", (("batchnorm", BN_TRAIN_STATS,
                                               "        mean = x.mean(axis=0)\n        var = x.var(axis=0, ddof=1)\n"),),
         (TRAIN,), "normalises with the unbiased variance"),
    Case("bn_hardcoded_momentum", (("batchnorm", "new_mean = (1 - momentum) * running_mean + momentum * mean",
                                    "new_mean = 0.9 * running_mean + 0.1 * mean"),), (TRAIN,),
         "ignores the momentum argument for the running mean"),
    Case("bn_updates_running_mean_in_place", (("batchnorm", "        new_mean = (1 - momentum) * running_mean + momentum * mean\n",
                                               "        running_mean *= 1 - momentum\n        running_mean += momentum * mean\n"
                                               "        new_mean = running_mean\n"),), (TRAIN,),
         "updates running_mean in place"),
    Case("bn_forward_float32", (("batchnorm", "    N = x.shape[0]\n    if training:\n        mean",
                                  "    N = x.shape[0]\n    x = x.astype(np.float32)\n    if training:\n        mean"),),
         (TRAIN, EVAL), "computes in float32 whatever the input"),
    Case("bn_backward_missing_xhat_term", (("batchnorm", BN_BACK_DX,
                                            "        dx = inv_std / N * (N * dx_hat - dx_hat.sum(axis=0))\n"),), (BACK,),
         "drops the variance's share of dx"),
    Case("bn_backward_mean_dbeta", (("batchnorm", "    dbeta = dout.sum(axis=0)\n", "    dbeta = dout.mean(axis=0)\n"),),
         (BACK,), "averages dbeta over the batch"),
    Case("bn_backward_eval_like_training", (("batchnorm", "    if training:\n        N = x.shape[0]\n",
                                             "    if True:\n        N = x.shape[0]\n"),), (BACK,),
         "uses the training-mode dx in evaluation mode"),
    Case("bn_backward_ignores_gamma", (("batchnorm", "    dx_hat = dout * gamma\n", "    dx_hat = dout\n"),), (BACK,),
         "forgets gamma in dx"),
    Case("spatial_reshape_without_transpose", (("spatial_batchnorm", "    rows = x.transpose(0, 2, 3, 1).reshape(-1, C)\n",
                                                "    rows = x.reshape(-1, C)\n"),), (SPATIAL,),
         "reshapes to (N*H*W, C) without moving the channel axis last"),
    Case("spatial_reshape_back_wrong", (("spatial_batchnorm", "    out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n",
                                         "    out = out_rows.reshape(N, C, H, W)\n"),), (SPATIAL,),
         "reshapes the output back without the transpose"),
    Case("dropout_not_inverted", (("dropout", "    out = x * keep / (1 - p)\n", "    out = x * keep\n"),), (DROP_F,),
         "does not scale the kept activations by 1 / (1 - p)"),
    Case("dropout_keeps_below_p", (("dropout", "    keep = rng.random(x.shape) >= p\n", "    keep = rng.random(x.shape) < p\n"),),
         (DROP_F,), "keeps with probability p instead of dropping with it"),
    Case("dropout_scales_by_p", (("dropout", "    out = x * keep / (1 - p)\n", "    out = x * keep / p\n"),), (DROP_F,),
         "scales by 1 / p"),
    Case("dropout_eval_scales", (("dropout", "        return x.copy(), {\"keep\": None, \"p\": p}\n",
                                  "        return x * (1 - p), {\"keep\": None, \"p\": p}\n"),), (DROP_F,),
         "scales by (1 - p) in evaluation mode (non-inverted dropout)"),
    Case("dropout_in_place", (("dropout", "    out = x * keep / (1 - p)\n", "    x *= keep / (1 - p)\n    out = x\n"),),
         (DROP_F,), "applies the mask to x in place"),
    Case("dropout_backward_unscaled", (("dropout", "    return dout * cache[\"keep\"] / (1 - cache[\"p\"])\n",
                                        "    return dout * cache[\"keep\"]\n"),), (DROP_B,),
         "forgets the 1 / (1 - p) scale in the backward pass"),
    Case("dropout_backward_no_identity", (("dropout", "    if cache[\"keep\"] is None:\n        return dout.copy()\n", ""),),
         (DROP_B,), "has no identity branch: fails when nothing was dropped"),
]

CORRECT = [
    Case("bn_loops_and_moments", (
        ("batchnorm", BN_TRAIN_STATS,
         "        mean = np.array([x[:, d].mean() for d in range(x.shape[1])])\n"
         "        var = (x ** 2).mean(axis=0) - mean ** 2\n"),), (), "per-feature loop, variance as E[x^2] - mean^2"),
    Case("spatial_own_statistics", (
        ("spatial_batchnorm", "    rows = x.transpose(0, 2, 3, 1).reshape(-1, C)\n",
         "    rows = np.moveaxis(x, 1, -1).reshape(N * H * W, C)\n"),
        ("spatial_batchnorm", "    out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n",
         "    out = np.moveaxis(out_rows.reshape(N, H, W, C), -1, 1)\n")), (), "np.moveaxis instead of transpose"),
    Case("dropout_where_and_warning", (
        ("dropout", "    keep = rng.random(x.shape) >= p\n    out = x * keep / (1 - p)\n",
         "    keep = rng.random(x.size).reshape(x.shape) > p\n    out = np.where(keep, x / (1 - p), 0.0)\n"),
        ("dropout", "    return dout * cache[\"keep\"] / (1 - cache[\"p\"])\n",
         "    scale = cache[\"keep\"] * (1 - cache[\"p\"])\n    return np.where(scale > 0, dout / scale, 0.0)  # warns: divide by zero\n"),
    ), (), "mask drawn flat with >, np.where, a backward that warns"),
    Case("bn_backward_textbook", (
        ("batchnorm", BN_BACK_DX,
         "        dvar = (dx_hat * (x - cache[\"mean\"])).sum(axis=0) * -0.5 * inv_std ** 3\n"
         "        dmean = -(dx_hat * inv_std).sum(axis=0) + dvar * -2 * (x - cache[\"mean\"]).mean(axis=0)\n"
         "        dx = dx_hat * inv_std + dvar * 2 * (x - cache[\"mean\"]) / N + dmean / N\n"),), (),
         "the step-by-step computational-graph backward"),
]
