"""Mini-batch training of the numpy networks in :mod:`coursekit.nets`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from .optim import UPDATE_RULES

__all__ = ["Solver", "History", "LENET5_MNIST5K"]

#: Solver settings for the numpy LeNet-5 on MNIST-5k, chosen on the validation set
#: (two seeds, 5 epochs): about 96% test accuracy at under a second per epoch.
LENET5_MNIST5K = dict(update_rule="adam", optim_config={"lr": 3e-3}, lr_decay=0.6, batch_size=50, num_epochs=5)


@dataclass
class History:
    """What a training run records: one loss per step, accuracies and time per epoch."""

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)


class Solver:
    """Train a model with mini-batch gradient descent.

    Parameters
    ----------
    model
        Has ``params`` (dict of arrays) and ``loss(X, y=None)``.
    X_train, y_train, X_val, y_val : arrays
        Training and validation data; images (N, C, H, W) or features (N, D).
    update_rule : {"sgd", "sgd_momentum", "rmsprop", "adam"}
    optim_config : dict
        Hyper-parameters of the rule, e.g. ``{"lr": 1e-3}``.
    lr_decay : float
        The learning rate is multiplied by this after every epoch.
    batch_size, num_epochs : int
    seed : int
        Seeds the order of the mini-batches.
    train_eval_samples : int
        Training accuracy is measured on this many training examples per epoch.
    progress : bool
        Show a tqdm progress bar with the running loss.

    Notes
    -----
    After :meth:`train`, ``model.params`` holds the parameters of the epoch with the
    best validation accuracy, and ``history`` the curves.
    """

    def __init__(self, model, X_train, y_train, X_val, y_val, *, update_rule="adam", optim_config=None,
                 lr_decay=1.0, batch_size=64, num_epochs=5, seed=0, train_eval_samples=1000, progress=True):  # fmt: skip
        if update_rule not in UPDATE_RULES:
            raise ValueError(f"Solver: unknown update_rule {update_rule!r}; choose one of {sorted(UPDATE_RULES)}")
        if len(X_train) != len(y_train) or len(X_val) != len(y_val):
            raise ValueError(
                f"Solver: images and labels differ in number: X_train {len(X_train)} / y_train {len(y_train)}, "
                f"X_val {len(X_val)} / y_val {len(y_val)}"
            )
        self.model = model
        self.X_train, self.y_train, self.X_val, self.y_val = X_train, y_train, X_val, y_val
        self.rule = UPDATE_RULES[update_rule]
        self.optim_config = dict(optim_config or {})
        self.optim_config.setdefault("lr", 1e-3 if update_rule == "adam" else 1e-2)
        self.lr_decay = lr_decay
        self.batch_size = batch_size
        self.num_epochs = num_epochs
        self.rng = np.random.default_rng(seed)
        self.train_eval_samples = train_eval_samples
        self.progress = progress
        self.states = {name: None for name in model.params}
        self.history = History()
        self.best_val_acc = -1.0
        self.best_params = None

    def step(self, X_batch, y_batch) -> float:
        """One gradient step on one mini-batch; returns its loss."""
        loss, grads = self.model.loss(X_batch, y_batch)
        for name, w in self.model.params.items():
            self.model.params[name], self.states[name] = self.rule(w, grads[name], self.states[name], **self.optim_config)
        return loss

    def accuracy(self, X, y, batch_size=500) -> float:
        """Fraction of ``X`` the model labels correctly."""
        return float(np.mean(self.model.predict(X, batch_size) == y))

    def train(self) -> History:
        """Run ``num_epochs`` epochs; keeps the best parameters by validation accuracy."""
        n = len(self.X_train)
        steps_per_epoch = max(1, -(-n // self.batch_size))
        bar = tqdm(total=self.num_epochs * steps_per_epoch, disable=not self.progress, unit="batch")
        for epoch in range(self.num_epochs):
            start = time.perf_counter()
            order = self.rng.permutation(n)
            for i in range(0, n, self.batch_size):
                idx = order[i : i + self.batch_size]
                self.history.loss.append(self.step(self.X_train[idx], self.y_train[idx]))
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{self.history.loss[-1]:.3f}")
            self.history.epoch_seconds.append(time.perf_counter() - start)
            self.history.lr.append(self.optim_config["lr"])
            self.optim_config["lr"] *= self.lr_decay
            sample = self.rng.choice(n, size=min(n, self.train_eval_samples), replace=False)
            self.history.train_acc.append(self.accuracy(self.X_train[sample], self.y_train[sample]))
            self.history.val_acc.append(self.accuracy(self.X_val, self.y_val))
            bar.set_postfix(epoch=epoch + 1, train_acc=f"{self.history.train_acc[-1]:.3f}", val_acc=f"{self.history.val_acc[-1]:.3f}")
            if self.history.val_acc[-1] > self.best_val_acc:
                self.best_val_acc = self.history.val_acc[-1]
                self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        bar.close()
        if self.best_params is not None:
            self.model.params = self.best_params
        return self.history
