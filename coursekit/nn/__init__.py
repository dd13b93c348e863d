"""The torch side of coursekit: models, summary, augmentation, training, figures.

Everything that imports torch lives in this subpackage, so ``import coursekit``
and the numpy core never pull torch in. Import what you need from the modules::

    from coursekit.nn.recipes import default_config
    from coursekit.nn.experiment import run_training     # one training, from a TrainConfig
    from coursekit.nn.models import build_model
    from coursekit.nn.train import fit, evaluate
    from coursekit.nn.summary import summary
"""

from __future__ import annotations

__all__ = ["augment", "datasets", "device", "distributed", "experiment", "figures", "models", "recipes", "summary",
           "train"]
