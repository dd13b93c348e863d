"""Hidden-test cases of homework 5 (CNNs in PyTorch) and the checks that judge them, on the grader's side.

Student objects (modules, optimisers, loaders) are built next to the student's code with
``student.lib`` and reached through handles; what a check compares is plain data brought back:
outputs, returned numbers and ``state_dict()`` tensors. Weights are copied between the student's
modules and the course's reference by registration order, with shapes checked.

Coverage is fixed, randomness varies the values: every run builds a residual block that changes
channels at stride 1, one that downsamples, one that keeps its shape; batches of two and more,
non-square images, float32 and float64, batches of unequal sizes, training and evaluation mode.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from coursekit import checks
from coursekit.nn import models
from coursekit.testcases import torch_probes

__all__ = ["Case", "block_cases", "shift_cases", "copy_weights", "check_lenet5", "check_residual_block",
           "reference_shift", "check_random_shift", "loop_cases", "reference_train_one_epoch",
           "check_train_one_epoch", "reference_evaluate", "check_evaluate", "check_get_device",
           "lenet_from", "components_failing"]


class Case(NamedTuple):
    label: str
    args: dict


def _label(fn: str, k: int, n: int, desc: str, seed: int | None) -> str:
    if seed is None:
        return f"{fn}, example {k + 1} ({desc})"
    return f"{fn}, hidden case {k + 1} of {n} ({desc}; replay with COURSEKIT_SEED={seed})"


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


# -------------------------------------------------------------------- weights


def copy_weights(student_module, reference: torch.nn.Module, label: str) -> None:
    """Load the reference's parameters and buffers into the student's module, in registration order."""
    mine = student_module.state_dict()
    ref = list(reference.state_dict().values())
    if len(mine) != len(ref):
        raise checks.CheckFailure(
            f"{label}: your module has {len(mine)} parameters and buffers but the reference has {len(ref)} "
            f"(shapes {[tuple(t.shape) for t in ref]}; create the layers in the order given, with the biases asked)")
    new = {}
    for i, ((key, value), r) in enumerate(zip(mine.items(), ref)):
        if tuple(value.shape) != tuple(r.shape):
            raise checks.CheckFailure(f"{label}: {key} (entry {i}) has shape {tuple(value.shape)} but the reference's "
                                      f"has {tuple(r.shape)} (create the layers in the order given)")
        new[key] = r.detach().clone().to(value.dtype)
    student_module.load_state_dict(new)


def _forward(student_module, x: torch.Tensor) -> np.ndarray:
    out = student_module(x)
    return _numpy(out)


# -------------------------------------------------------------------- LeNet-5


def lenet_cases(seed: int | None) -> list:
    rng = np.random.default_rng(0 if seed is None else seed)
    specs = ((10, 2), (int(rng.integers(2, 9)), int(rng.integers(3, 6))))  # the default and another class count
    return [Case(_label("LeNet5", k, len(specs), f"num_classes={c}, x ({n}, 1, 28, 28) float64", seed),
                 {"num_classes": c, "x": torch.from_numpy(rng.standard_normal((n, 1, 28, 28))),
                  "seed": int(rng.integers(1 << 30))})
            for k, (c, n) in enumerate(specs)]


def check_lenet5(LeNet5: Callable, case: Case) -> None:
    """The student's LeNet5 with the reference's weights gives the reference's logits (float64)."""
    c = case.args["num_classes"]
    mine = LeNet5() if c == 10 else LeNet5(num_classes=c)
    mine.double()
    torch.manual_seed(case.args["seed"])
    ref = models.LeNet5(num_classes=c).double().eval()
    copy_weights(mine, ref, case.label)
    mine.eval()
    with torch.no_grad():
        expected = ref(case.args["x"]).numpy()
    checks.assert_matches(case.label, _forward(mine, case.args["x"]), expected, what="logits", rtol=1e-9, atol=1e-10)


# ------------------------------------------------------------- residual block


# (in, out, stride): identity shortcut; channel change at stride 1; downsampling with a channel
# change; downsampling at the same width.
_BLOCKS = ((3, 3, 1), (2, 4, 1), (2, 5, 2), (3, 3, 2))


def block_cases(seed: int | None) -> list:
    rng = np.random.default_rng(0 if seed is None else seed)
    cases = []
    for k, (cin, cout, stride) in enumerate(_BLOCKS):
        shape = (int(rng.integers(2, 4)), cin, int(rng.integers(4, 7)), 7)  # H < W: never square
        desc = f"ResidualBlock({cin}, {cout}, stride={stride}), x {shape} float64"
        cases.append(Case(_label("ResidualBlock", k, len(_BLOCKS), desc, seed),
                          {"block": (cin, cout, stride), "x": torch.from_numpy(rng.standard_normal(shape)),
                           "seed": int(rng.integers(1 << 30))}))
    return cases


def check_residual_block(ResidualBlock: Callable, case: Case) -> None:
    """Outputs in training mode, then in evaluation mode (with the running statistics training left)."""
    cin, cout, stride = case.args["block"]
    mine = ResidualBlock(cin, cout, stride)
    mine.double()
    torch.manual_seed(case.args["seed"])
    ref = models.BasicBlock(cin, cout, stride).double()
    with torch.no_grad():  # non-trivial batch-norm parameters and running statistics
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(), m.running_mean.normal_(), m.running_var.uniform_(0.5, 2)
    copy_weights(mine, ref, case.label)
    x = case.args["x"]
    for training in (True, False):
        ref.train(training)
        mine.train(training)
        with torch.no_grad():
            expected = ref(x.clone()).numpy()
        checks.assert_matches(case.label, _forward(mine, x.clone()), expected,
                              what=f"output in {'training' if training else 'evaluation'} mode", rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------- random shift


def shift_cases(seed: int | None) -> list:
    """Batches of 5 to 8 images, 1 to 3 channels, H != W, shifts 1 to 3 (one as large as the image), float32 and 64."""
    rng = np.random.default_rng(0 if seed is None else seed)
    specs = ((1, np.float32, (5, 7)), (2, np.float64, (6, 4)), (3, np.float64, (3, 5)))
    cases = []
    for k, (shift, dtype, hw) in enumerate(specs):
        shape = (int(rng.integers(5, 9)), int(rng.integers(1, 4)), *hw)
        gen_seed = int(rng.integers(1 << 30))
        desc = f"x {shape} {np.dtype(dtype).name}, max_shift={shift}, generator seed {gen_seed}"
        cases.append(Case(_label("random_shift", k, len(specs), desc, seed),
                          {"x": torch.from_numpy(rng.standard_normal(shape).astype(dtype)), "max_shift": shift,
                           "gen_seed": gen_seed}))
    return cases


def reference_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Pad by ``max_shift`` and cut each image's window at offsets drawn as the homework prescribes."""
    n, c, h, w = x.shape
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)
    padded = F.pad(x, (max_shift,) * 4)
    return torch.stack([padded[i, :, t:t + h, s:s + w] for i, (t, s) in enumerate(offsets.tolist())])


def check_random_shift(random_shift: Callable, make_generator: Callable, case: Case) -> None:
    """Exactly the reference's shifted batch for the same generator seed; x unchanged; dtype kept."""
    x = case.args["x"]
    mine = x.clone()
    got = random_shift(mine, case.args["max_shift"], make_generator().manual_seed(case.args["gen_seed"]))
    if not torch.equal(mine, x):
        raise checks.CheckFailure(f"{case.label}: your function changed x in place; return a new tensor")
    expected = reference_shift(x, case.args["max_shift"], torch.Generator().manual_seed(case.args["gen_seed"]))
    if not isinstance(got, torch.Tensor):
        raise checks.CheckFailure(f"{case.label}: should return a tensor, got {type(got).__name__}")
    checks.assert_matches(case.label, _numpy(got), expected.numpy(), what="output", rtol=0, atol=0,
                          against="the reference for the same generator")


# ----------------------------------------------------------- training and evaluation


def loop_cases(seed: int | None, fn: str) -> list:
    """Toy problems: 3 batches of unequal sizes (2 to 7 examples), 3 to 6 features, 2 to 4 classes."""
    rng = np.random.default_rng(0 if seed is None else seed)
    cases = []
    for k, (optimizer, augment) in enumerate((("SGD", False), ("Adam", True))):
        d, c = int(rng.integers(3, 7)), int(rng.integers(2, 5))
        sizes = [int(s) for s in rng.choice(np.arange(2, 8), size=3, replace=False)]
        batches = [(torch.from_numpy(rng.standard_normal((n, d))), torch.from_numpy(rng.integers(0, c, size=n)))
                   for n in sizes]
        desc = f"{d} features, {c} classes, batches of {sizes}, {optimizer}" + (", augment" if augment else "")
        cases.append(Case(_label(fn, k, 2, desc, seed), {"d": d, "c": c, "batches": batches, "seed": int(rng.integers(1 << 30)),
                                                         "optimizer": optimizer, "augment": augment}))
    return cases


def _halve(x: torch.Tensor) -> torch.Tensor:
    return x * 0.5


def _optimizer(make: Callable, name: str, params) -> object:
    if name == "SGD":
        return make("torch.optim.SGD")(params, lr=0.1, momentum=0.9)
    return make("torch.optim.Adam")(params, lr=0.01, foreach=True)


def _lib(dotted: str):
    module, _, attr = dotted.rpartition(".")
    return getattr(__import__(module, fromlist=[attr]), attr)


def reference_train_one_epoch(model, batches, optimizer, augment=None) -> float:
    model.train()
    total, count = 0.0, 0
    for x, y in batches:
        if augment is not None:
            x = augment(x)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, count = total + loss.item() * len(y), count + len(y)
    return total / count


def _compare_states(label: str, got: dict, expected: dict, what: str) -> None:
    # Adam divides by sqrt(v): one epoch computed with another thread count (the grader's sandbox uses
    # one) differs by ~1e-9 relative; a wrong loop differs by about the learning rate.
    for (key, g), e in zip(got.items(), expected.values()):
        checks.assert_matches(label, _numpy(g), _numpy(e), what=f"{key} {what}", rtol=1e-6, atol=1e-9)


def check_train_one_epoch(train_one_epoch: Callable, lib: Callable, case: Case) -> None:
    """One epoch from a model left in evaluation mode: the mean loss and every parameter and buffer after it."""
    a = case.args
    ref = torch_probes.toy_model(a["d"], a["c"], a["seed"])
    reference_loss = reference_train_one_epoch(ref, a["batches"], _optimizer(_lib, a["optimizer"], ref.parameters()),
                                               _halve if a["augment"] else None)
    model = lib("coursekit.testcases.torch_probes.toy_model")(a["d"], a["c"], a["seed"])
    model.eval()  # the loop must switch to training mode itself
    optimizer = _optimizer(lib, a["optimizer"], model.parameters())
    loader = lib("coursekit.testcases.torch_probes.UnmovedLoader")(a["batches"])
    kwargs = {"augment": _halve} if a["augment"] else {}
    got = train_one_epoch(model, loader, optimizer, torch.device("cpu"), **kwargs)
    checks.assert_matches(case.label, np.asarray([float(got)]), np.asarray([reference_loss]),
                          what="mean training loss (over the examples)", rtol=1e-7, atol=1e-10)
    _compare_states(case.label, model.state_dict(), ref.state_dict(), "after one epoch")


def reference_evaluate(model, batches) -> tuple:
    model.eval()
    loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in batches:
            logits = model(x)
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(1) == y).sum())
            count += len(y)
    return loss / count, correct / count


def _graded_labels(model, batches, c: int) -> list:
    """Labels the model gets all right in the first and last batches and all wrong in the largest,
    which sits in the middle: the accuracy over the examples is then below 2/3, the mean of the
    batch accuracies is 2/3, so no seed lets one pass for the other."""
    batches = sorted(batches, key=lambda b: len(b[1]))
    batches = [batches[0], batches[-1], *batches[1:-1]]
    model.eval()
    out = []
    with torch.no_grad():
        for i, (x, _) in enumerate(batches):
            pred = model(x).argmax(1)
            out.append((x, (pred + 1) % c if i == 1 else pred))
    return out


def check_evaluate(evaluate: Callable, lib: Callable, case: Case) -> None:
    """A model with batch norm and dropout handed over in training mode: loss, accuracy, model unchanged."""
    a = case.args
    ref = torch_probes.toy_model(a["d"], a["c"], a["seed"], dropout=0.5)
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    batches = _graded_labels(ref, a["batches"], a["c"])
    expected = reference_evaluate(ref, batches)
    model = lib("coursekit.testcases.torch_probes.toy_model")(a["d"], a["c"], a["seed"], dropout=0.5)
    model.train()
    loader = lib("coursekit.testcases.torch_probes.UnmovedLoader")(batches)
    got = evaluate(model, loader, torch.device("cpu"))
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise checks.CheckFailure(f"{case.label}: should return (mean loss, accuracy), got {type(got).__name__}")
    for what, g, e in zip(("mean loss (over the examples)", "accuracy (over the examples)"), got, expected):
        checks.assert_matches(case.label, np.asarray([float(g)]), np.asarray([e]), what=what, rtol=1e-9, atol=1e-12)
    _compare_states(case.label, model.state_dict(), before, "after evaluate (the model must not change)")


# ---------------------------------------------------------------------- device


def check_get_device(get_device: Callable, lib: Callable) -> None:
    """Every branch: CUDA first, then MPS, then the CPU, with availability faked in the student's process."""
    for cuda, mps, expected in ((True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"), (True, True, "cuda")):
        fake = lib("coursekit.testcases.torch_probes.FakeAccelerators")(cuda, mps)
        fake.start()
        try:
            got = get_device()
        finally:
            fake.stop()
        kind = getattr(got, "type", None)
        if kind != expected:
            raise checks.CheckFailure(f"get_device: with CUDA {'available' if cuda else 'unavailable'} and MPS "
                                      f"{'available' if mps else 'unavailable'} it returned {got!r}, expected "
                                      f"torch.device({expected!r})")


# -------------------------------------------------------------- the trained LeNet-5


def lenet_from(state: dict) -> torch.nn.Module:
    """The course's LeNet-5 (float32, CPU, evaluation mode) with a student's trained weights."""
    ref = models.LeNet5()
    values = list(state.values())
    ref_state = ref.state_dict()
    if len(values) != len(ref_state):
        raise checks.CheckFailure(f"train_mnist: the returned model has {len(values)} parameters and buffers, "
                                  f"LeNet-5 has {len(ref_state)}")
    new = {}
    for (key, r), v in zip(ref_state.items(), values):
        if tuple(v.shape) != tuple(r.shape):
            raise checks.CheckFailure(f"train_mnist: a weight of shape {tuple(v.shape)} stands where LeNet-5 has {key} "
                                      f"of shape {tuple(r.shape)}")
        new[key] = v.detach().cpu().to(r.dtype)
    ref.load_state_dict(new)
    return ref.eval()


def components_failing(student: Callable) -> list:
    """Which of the functions a training run builds on fail one of their own cases (those are charged there)."""
    lib = student.lib
    trials = {
        "LeNet5": lambda: check_lenet5(student("LeNet5"), lenet_cases(None)[0]),
        "train_one_epoch": lambda: check_train_one_epoch(student("train_one_epoch"), lib, loop_cases(None, "x")[1]),
        "random_shift": lambda: check_random_shift(student("random_shift"), lib("torch.Generator"),
                                                   shift_cases(None)[1]),
    }
    failing = []
    for name, trial in trials.items():
        try:
            trial()
        except Exception:  # noqa: BLE001 - any failure of a component is charged by its own test
            failing.append(name)
    return failing
