"""What a training run is: a typed configuration, and the course's measured default recipes.

A :class:`TrainConfig` holds everything one run depends on: the model and data,
the recipe (batch size, optimiser, learning rate and schedule, weight decay,
label smoothing, weight averaging, batch norm, dropout, augmentation, epochs) and where and how it
runs. :func:`default_config` starts from the recipe measured for a model and data
set pair (:data:`RECIPES`) and lets any field be overridden::

    config = default_config("lenet5", "mnist5k", seed=3)          # the tuned recipe
    config = default_config("lenet5", "mnist5k", epochs=5)        # the same, shorter

:func:`coursekit.nn.experiment.run_training` runs one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .datasets import DATASETS
from .models import MODELS

__all__ = ["TrainConfig", "ConfigError", "RECIPES", "RECIPE_FIELDS", "default_config"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "step", "onecycle", "none")
_WIDTH_MODELS = ("alexnet_small", "vgg_small", "resnet18_small")


class ConfigError(ValueError):
    """A configuration that cannot run; the message is one line naming the field."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Field names are the command line's flags (``batch_size`` is ``--batch-size``).

    ``batch_norm`` and ``dropout`` of None keep the model's own; ``schedule`` is
    cosine, step, onecycle or none; ``limit`` keeps the first N images of each
    part; ``out`` is the directory of the checkpoint (None: no checkpoint);
    ``device`` is auto, cpu, cuda, cuda:N or mps; ``amp`` turns on float16 mixed
    precision where the device is CUDA.
    """

    model: str = "lenet5"
    data: str = "mnist5k"
    # the recipe
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    ema: float = 0.0
    augment: bool = False
    batch_norm: bool | None = None
    dropout: float | None = None
    width: float | None = None
    resize: int | None = None
    # the data, the machine, the outputs
    data_root: str | None = None
    limit: int | None = None
    device: str = "auto"
    amp: bool = True
    threads: int | None = None
    seed: int = 0
    out: str | None = None
    resume: bool = False
    progress: bool = True

    def recipe(self) -> dict[str, Any]:
        """The fields that decide what is learned (see :data:`RECIPE_FIELDS`)."""
        return {k: getattr(self, k) for k in RECIPE_FIELDS}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> "TrainConfig":
        """Raise :class:`ConfigError` naming the first field that cannot work; return self."""
        _check_names(self)
        _check_numbers(self)
        return self


#: The fields of a recipe, as opposed to where and how a run happens.
RECIPE_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule",
                 "label_smoothing", "ema", "augment", "batch_norm", "dropout", "width", "resize")

#: Measured recipes by (model, data set); fields not given keep :class:`TrainConfig`'s defaults.
#: lenet5 / mnist5k: chosen with benchmarks/recipe_sweep.py (the measurements are in the README, "Recipes").
RECIPES: dict[tuple[str, str], dict[str, Any]] = {
    ("lenet5", "mnist5k"): dict(epochs=80, batch_size=128, lr=0.2, weight_decay=5e-4, schedule="cosine",
                                label_smoothing=0.1, ema=0.998, augment=True, batch_norm=True, dropout=0.2),
}


def default_config(model: str = "lenet5", data: str = "mnist5k", **overrides: Any) -> TrainConfig:
    """The measured recipe of ``(model, data)``, then ``overrides`` (a None override is ignored).

    A pair without a measured recipe gets :class:`TrainConfig`'s generic defaults.
    """
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"unknown configuration field(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(TrainConfig(model=model, data=data, **RECIPES.get((model, data), {})), **given)


def _check_names(c: TrainConfig) -> None:
    if c.model not in MODELS:
        raise ConfigError(f"unknown model {c.model!r}; choose one of: {', '.join(MODELS)}")
    if c.data not in DATASETS:
        raise ConfigError(f"unknown data set {c.data!r}; choose one of: {', '.join(DATASETS)}")
    if c.optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown --optimizer {c.optimizer!r}; choose sgd, adam or adamw")
    if c.schedule not in SCHEDULES:
        raise ConfigError(f"unknown --schedule {c.schedule!r}; choose cosine, step, onecycle or none")
    if c.width is not None and c.model not in _WIDTH_MODELS:
        raise ConfigError(f"--width applies to {', '.join(_WIDTH_MODELS)}, not {c.model}")


def _check_numbers(c: TrainConfig) -> None:
    for name, low in (("epochs", 0), ("batch_size", 1), ("limit", 1), ("resize", 1), ("threads", 1)):
        value = getattr(c, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise ConfigError(f"--{name.replace('_', '-')} must be >= {low} (an int), got {value!r}")
    if not c.lr > 0:
        raise ConfigError(f"--lr must be > 0, got {c.lr}")
    if c.weight_decay < 0 or c.momentum < 0:
        raise ConfigError(f"--weight-decay and --momentum must be >= 0, got {c.weight_decay} and {c.momentum}")
    if not 0 <= c.label_smoothing < 1:
        raise ConfigError(f"--label-smoothing must be in [0, 1), got {c.label_smoothing}")
    if not 0 <= c.ema < 1:
        raise ConfigError(f"--ema must be in [0, 1), got {c.ema}")
    if c.dropout is not None and not 0 <= c.dropout < 1:
        raise ConfigError(f"--dropout must be in [0, 1), got {c.dropout}")
