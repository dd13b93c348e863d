"""summary() against the hand formulas of coursekit.arith."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from coursekit import arith  # noqa: E402
from coursekit.nn.models import ALEXNET_SPEC, LeNet5, alexnet, resnet18_small  # noqa: E402
from coursekit.nn.summary import summary  # noqa: E402

COUNTED = ("Conv2d", "MaxPool2d", "AvgPool2d", "Linear")


@pytest.fixture(scope="module")
def alexnet_summary():
    torch.manual_seed(0)
    model = alexnet()
    return model, summary(model, (3, 227, 227))


def test_alexnet_conv1_row(alexnet_summary):
    _, s = alexnet_summary
    conv1 = next(r for r in s.rows if r.name.endswith("conv1"))
    assert conv1.output_shape == (96, 55, 55), f"CONV1 output {conv1.output_shape}, the syllabus says 55x55x96"
    assert conv1.params == 34_944 == arith.conv_params(3, 96, 11)
    assert conv1.macs == arith.conv_macs(3, 96, 11, 55, 55) == 105_415_200
    assert conv1.flops == 2 * conv1.macs


def test_alexnet_rows_match_arith_describe(alexnet_summary):
    model, s = alexnet_summary
    expected = arith.describe(ALEXNET_SPEC, (3, 227, 227))
    got = [r for r in s.rows if r.type in COUNTED]
    assert [r.name.split(".")[-1] for r in got] == [r.name for r in expected]
    for g, e in zip(got, expected):
        assert g.output_shape == e.output_shape, f"{e.name}: shape {g.output_shape}, arith says {e.output_shape}"
        assert g.params == e.params, f"{e.name}: {g.params:,} parameters, arith says {e.params:,}"
        assert g.macs == e.macs, f"{e.name}: {g.macs:,} MACs, arith says {e.macs:,}"
    total = sum(p.numel() for p in model.parameters())
    assert s.total_params == total == sum(r.params for r in expected) == 62_378_344
    assert s.total_macs == sum(r.macs for r in expected)
    table = str(s)
    assert "96x55x55" in table and "34,944" in table and "62,378,344" in table


def test_lenet5_matches_arith_and_counts_every_parameter():
    model = LeNet5(1, 10, 32, pool="avg")
    s = summary(model, (1, 32, 32))
    spec = [arith.Conv(6, 5, name="conv1"), arith.Pool(2, name="pool1"), arith.Conv(16, 5, name="conv2"),
            arith.Pool(2, name="pool2"), arith.Dense(120, name="fc3"), arith.Dense(84, name="fc4"),
            arith.Dense(10, name="fc5")]
    expected = arith.describe(spec, (1, 32, 32))
    got = [r for r in s.rows if r.type in COUNTED]
    assert [(r.output_shape, r.params, r.macs) for r in got] == [(e.output_shape, e.params, e.macs) for e in expected]
    assert s.total_params == sum(p.numel() for p in model.parameters()) == sum(r.params for r in s.rows)


def test_summary_restores_mode_and_handles_repeated_modules():
    model = resnet18_small(width=4)
    model.train()
    s = summary(model, (3, 32, 32))
    assert model.training, "summary must restore train mode"
    assert s.total_params == sum(r.params for r in s.rows) == sum(p.numel() for p in model.parameters())
    assert s.rows[-1].output_shape == (10,)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        summary(model, (32, 32))
