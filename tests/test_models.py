"""The paper's building blocks (lenet_utils.layers) and the LeNet variants (lenet_utils.models).

Every expected number here is written from the paper (LeCun et al. 1998, §II.B, Table I,
Appendix A, Eq. 7), independently of the code under test.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lenet_utils import layers, models
from lenet_utils.layers import C3_TABLE, RBFOutput, ScaledTanh, SparseConv2d, Subsampling, c3_mask


def trainable(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


# Table I of the paper as printed: rows are the six S2 maps, columns the sixteen C3 maps,
# "X" where an S2 map feeds a C3 map.
TABLE_I = [
    "X...XXX..XXXX.XX",
    "XX...XXX..XXXX.X",
    "XXX...XXX..X.XXX",
    ".XXX..XXXX..X.XX",
    "..XXX..XXXX.XX.X",
    "...XXX..XXXX.XXX",
]
TABLE_I_MATRIX = torch.tensor([[ch == "X" for ch in row] for row in TABLE_I])  # (6 S2, 16 C3)


# ------------------------------------------------------------------------------------------
# Parameter counts (trainable = requires_grad)


def test_paper_network_parameter_counts_per_layer() -> None:
    net = models.LeNet5Paper()
    expected = {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164, "output": 0}
    assert {name: trainable(getattr(net, name)) for name in expected} == expected
    assert trainable(net) == models.count_parameters(net) == 60_000


def test_paper_network_rbf_weights_are_fixed_buffers() -> None:
    net = models.LeNet5Paper()
    assert not list(net.output.parameters())
    assert net.output.prototypes.shape == (10, 84) and net.output.prototypes.numel() == 840
    assert "output.prototypes" in net.state_dict()
    assert set(net.output.prototypes.unique().tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("paper", 60_000), ("d2l", 61_706), ("modern", 61_706), ("theano", 431_080)],
)
def test_total_parameters(name: str, expected: int) -> None:
    assert models.count_parameters(models.build_model(name)) == expected


def test_d2l_full_c3_and_linear_output() -> None:
    net = models.lenet_d2l()
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [trainable(m) for m in convs] == [156, 16 * (6 * 25 + 1)] == [156, 2416]
    assert [trainable(m) for m in linears] == [48120, 10164, 850]
    assert convs[0].padding == (2, 2)
    assert not any(isinstance(m, nn.Softmax) for m in net), "softmax belongs in the loss"


def test_modern_variant_differs_from_d2l_only_in_activation_and_pooling() -> None:
    d2l_net, modern = models.lenet_d2l(), models.lenet_modern()
    assert [tuple(p.shape) for p in modern.parameters()] == [
        (6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)
    ]  # fmt: skip
    assert [tuple(p.shape) for p in d2l_net.parameters()] == [tuple(p.shape) for p in modern.parameters()]
    assert sum(isinstance(m, nn.ReLU) for m in modern) == 4 and sum(isinstance(m, nn.MaxPool2d) for m in modern) == 2
    assert sum(isinstance(m, nn.Sigmoid) for m in d2l_net) == 4
    assert sum(isinstance(m, nn.AvgPool2d) for m in d2l_net) == 2


def test_d2l_builder_recomputes_flat_size_for_ablations() -> None:
    # C1 kernel 3 with padding 2: 28 + 4 - 3 + 1 = 30 -> 15 -> 11 -> 5: still 16*5*5 = 400.
    assert models.lenet_d2l(c1_kernel=3)[-5].in_features == 400
    # No pooling (pool size 1): 28 -> 28 -> 24, flattened 16*24*24.
    assert models.lenet_d2l(pool_size=1)[-5].in_features == 16 * 24 * 24
    with pytest.raises(ValueError, match="unknown activation"):
        models.lenet_d2l(activation="swish")
    with pytest.raises(ValueError, match="unknown model"):
        models.build_model("alexnet")


# ------------------------------------------------------------------------------------------
# C3 and Table I


def test_c3_mask_is_table_one() -> None:
    assert torch.equal(c3_mask(C3_TABLE).t(), TABLE_I_MATRIX)
    per_map = TABLE_I_MATRIX.sum(0).tolist()
    assert per_map == [3] * 6 + [4] * 9 + [6]
    assert 6 * (3 * 25 + 1) + 9 * (4 * 25 + 1) + (6 * 25 + 1) == 1516


def test_sparse_conv_wiring_measured_by_perturbation() -> None:
    """Change one S2 map at a time and see which C3 maps move: that is the wiring in use."""
    torch.manual_seed(0)
    c3 = SparseConv2d(6, 5, C3_TABLE)
    x = torch.randn(1, 6, 14, 14)
    base = c3(x)
    wired = torch.zeros(6, 16, dtype=torch.bool)
    for i in range(6):
        x2 = x.clone()
        x2[:, i] += torch.randn(14, 14)
        wired[i] = (c3(x2) - base).abs().amax(dim=(0, 2, 3)) > 0
    assert torch.equal(wired, TABLE_I_MATRIX)


def test_sparse_conv_holds_only_real_parameters() -> None:
    c3 = SparseConv2d(6, 5, C3_TABLE)
    assert c3.weight.shape == (60, 5, 5) and c3.bias.shape == (16,)
    assert trainable(c3) == 1516
    dense = c3.dense_weight()  # (16, 6, 5, 5)
    assert torch.equal(dense.abs().sum((2, 3)) != 0, TABLE_I_MATRIX.t())


def _masked_dense(c3: SparseConv2d) -> torch.Tensor:
    """The dense (16, 6, 5, 5) kernel built by hand from the table, for comparison."""
    w = torch.zeros(16, 6, 5, 5)
    n = 0
    for o, inputs in enumerate(C3_TABLE):
        for i in inputs:
            w[o, i] = c3.weight.detach()[n]
            n += 1
    return w


def test_sparse_conv_equals_masked_dense_conv_and_gradients() -> None:
    torch.manual_seed(1)
    c3 = SparseConv2d(6, 5, C3_TABLE)
    w_dense = _masked_dense(c3).requires_grad_(True)
    x = torch.randn(4, 6, 14, 14, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)
    y = c3(x)  # (4, 16, 10, 10)
    y_ref = F.conv2d(x_ref, w_dense, c3.bias.detach())
    assert y.shape == (4, 16, 10, 10)
    torch.testing.assert_close(y, y_ref)

    g = torch.randn_like(y)
    y.backward(g)
    y_ref.backward(g)
    torch.testing.assert_close(x.grad, x_ref.grad)
    # Each of the 60 real kernels gets exactly the dense gradient at its position ...
    expected = torch.stack([w_dense.grad[o, i] for o, inputs in enumerate(C3_TABLE) for i in inputs])
    torch.testing.assert_close(c3.weight.grad, expected)
    # ... and none of them is dead: every weight and bias receives a gradient.
    assert (c3.weight.grad != 0).all() and (c3.bias.grad != 0).all()
    # The dense conv would train the 36 missing kernels too: only the mask keeps them at zero.
    missing = ~TABLE_I_MATRIX.t()
    assert (w_dense.grad[missing].abs().sum((1, 2)) > 0).all()
    assert c3.dense_weight()[missing].abs().sum() == 0


def test_sparse_conv_rejects_bad_table() -> None:
    with pytest.raises(ValueError, match="outside"):
        SparseConv2d(6, 5, [(0, 6)])


# ------------------------------------------------------------------------------------------
# Subsampling, squashing, RBF


def test_subsampling_is_four_times_average_times_coefficient_plus_bias() -> None:
    torch.manual_seed(2)
    s = Subsampling(6)
    with torch.no_grad():
        s.weight.copy_(torch.randn(6))
        s.bias.copy_(torch.randn(6))
    x = torch.randn(3, 6, 28, 28)
    expected = 4 * F.avg_pool2d(x, 2) * s.weight.view(1, 6, 1, 1) + s.bias.view(1, 6, 1, 1)
    torch.testing.assert_close(s(x), expected)
    # one unit by hand: the sum of its four inputs
    manual = x[0, 3, 0:2, 2:4].sum() * s.weight[3] + s.bias[3]
    torch.testing.assert_close(s(x)[0, 3, 0, 1], manual)
    assert trainable(s) == 12 and trainable(Subsampling(16)) == 32


def test_scaled_tanh_matches_appendix_a() -> None:
    f = ScaledTanh()
    out = f(torch.tensor([1.0, -1.0, 0.0]))
    torch.testing.assert_close(out, torch.tensor([1.0, -1.0, 0.0]), atol=1e-5, rtol=0)
    assert f.A == 1.7159 and abs(f.S - 2 / 3) < 1e-12
    # asymptotes ±A, odd, slope A*S at the origin
    big = f(torch.tensor([50.0, -50.0]))
    torch.testing.assert_close(big, torch.tensor([1.7159, -1.7159]))
    a = torch.zeros(1, requires_grad=True)
    f(a).backward()
    assert abs(a.grad.item() - 1.7159 * 2 / 3) < 1e-6


def test_rbf_output_equals_direct_sum_of_squares() -> None:
    torch.manual_seed(3)
    rbf = RBFOutput()
    x = torch.randn(5, 84) * 1.5
    w = rbf.prototypes  # (10, 84)
    direct = ((x[:, None, :] - w[None, :, :]) ** 2).sum(-1)  # (5, 10)
    torch.testing.assert_close(rbf(x), direct, rtol=1e-5, atol=1e-4)
    # a prototype is at distance 0 from itself and its class wins
    assert torch.equal(rbf(w).argmin(1), torch.arange(10))
    torch.testing.assert_close(rbf(w).diagonal(), torch.zeros(10), atol=1e-4, rtol=0)


def test_rbf_bitmaps_are_ten_distinct_7x12_digits() -> None:
    bitmaps = layers.rbf_bitmaps()  # (10, 84) of ±1
    assert bitmaps.shape == (10, 84)
    ink = (bitmaps > 0).sum(1)
    assert ((ink > 84 * 0.25) & (ink < 84 * 0.55)).all(), ink
    hamming = (bitmaps[:, None] != bitmaps[None]).sum(-1)  # (10, 10)
    assert (hamming + 84 * torch.eye(10, dtype=torch.long) > 10).all(), "two prototypes nearly coincide"


# ------------------------------------------------------------------------------------------
# Shapes and errors


def _walk(net: nn.Sequential, x: torch.Tensor) -> list[tuple[int, ...]]:
    shapes = []
    for m in net:
        x = m(x)
        shapes.append(tuple(x.shape))
    return shapes


def test_d2l_shapes_for_28x28() -> None:
    shapes = _walk(models.lenet_d2l(), torch.zeros(1, 1, 28, 28))
    assert shapes == [
        (1, 6, 28, 28), (1, 6, 28, 28), (1, 6, 14, 14),
        (1, 16, 10, 10), (1, 16, 10, 10), (1, 16, 5, 5), (1, 400),
        (1, 120), (1, 120), (1, 84), (1, 84), (1, 10),
    ]  # fmt: skip


def test_modern_shapes_for_32x32() -> None:
    shapes = _walk(models.lenet_modern(), torch.zeros(1, 1, 32, 32))
    assert shapes == [
        (1, 6, 28, 28), (1, 6, 28, 28), (1, 6, 14, 14),
        (1, 16, 10, 10), (1, 16, 10, 10), (1, 16, 5, 5), (1, 400),
        (1, 120), (1, 120), (1, 84), (1, 84), (1, 10),
    ]  # fmt: skip


def test_paper_feature_shapes_for_32x32() -> None:
    feats = models.LeNet5Paper().features(torch.zeros(2, 1, 32, 32))
    assert {k: tuple(v.shape) for k, v in feats.items()} == {
        "C1": (2, 6, 28, 28), "S2": (2, 6, 14, 14), "C3": (2, 16, 10, 10), "S4": (2, 16, 5, 5),
        "C5": (2, 120), "F6": (2, 84), "output": (2, 10),
    }  # fmt: skip
    net = models.LeNet5Paper()
    assert net.predict(torch.zeros(3, 1, 32, 32)).shape == (3,)


def test_wrong_input_shapes_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"expects \(B, 1, 32, 32\)"):
        models.LeNet5Paper()(torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"Subsampling\(6\) expects \(B, 6, H, W\)"):
        Subsampling(6)(torch.zeros(1, 16, 10, 10))
    with pytest.raises(ValueError, match=r"RBFOutput expects \(B, 84\)"):
        RBFOutput()(torch.zeros(1, 120))
    with pytest.raises(RuntimeError, match="cannot be multiplied"):  # 28x28 into a 32x32 network
        models.lenet_modern()(torch.zeros(1, 1, 28, 28))


# ------------------------------------------------------------------------------------------
# Initialisation (Appendix C)


def test_paper_init_is_uniform_within_fan_in_bound() -> None:
    torch.manual_seed(4)
    net = models.LeNet5Paper()
    assert net.C1.weight.abs().max() <= 2.4 / 25
    assert net.C5.weight.abs().max() <= 2.4 / 400
    assert net.F6.weight.abs().max() <= 2.4 / 120
    assert net.S2.weight.abs().max() <= 2.4 / 4
    fan_in = torch.tensor([len(t) * 25 for t in C3_TABLE], dtype=torch.float)  # 75, 100 or 150
    per_kernel = torch.cat([fan_in[o].repeat(len(t)) for o, t in enumerate(C3_TABLE)])
    assert (net.C3.weight.abs().amax((1, 2)) <= 2.4 / per_kernel).all()
    # and not degenerate: the C1 weights fill most of their range
    assert net.C1.weight.abs().max() > 0.8 * 2.4 / 25
