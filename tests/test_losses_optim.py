"""lenet_utils.losses (Eq. 8, Eq. 9) and lenet_utils.optim (SDLM, Appendix C)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lenet_utils.layers import RBFOutput, ScaledTanh
from lenet_utils.losses import MAPLoss, MLELoss, map_loss, mle_loss
from lenet_utils.models import LeNet5Paper
from lenet_utils.optim import SDLM, gauss_newton_diagonal, paper_eps

torch.set_num_threads(1)  # tiny tensors: more threads only add contention on a shared CPU


def test_mle_is_the_correct_class_penalty() -> None:
    y = torch.tensor([[1.0, 5.0, 9.0], [4.0, 2.0, 0.5]])
    t = torch.tensor([0, 2])
    assert mle_loss(y, t).item() == pytest.approx((1.0 + 0.5) / 2)
    assert mle_loss(y, t, "none").tolist() == [1.0, 0.5]
    assert MLELoss("sum")(y, t).item() == pytest.approx(1.5)


def test_map_matches_equation_9() -> None:
    torch.manual_seed(0)
    y = torch.rand(6, 10) * 20
    t = torch.randint(0, 10, (6,))
    j = 3.0
    by_hand = [y[p, t[p]] + math.log(math.exp(-j) + torch.exp(-y[p]).sum().item()) for p in range(6)]
    assert map_loss(y, t, j, "none").tolist() == pytest.approx([float(v) for v in by_hand], rel=1e-5)
    assert (map_loss(y, t, j, "none") > 0).all()  # y_D + log(... + e^{-y_D} + ...) > 0
    assert MAPLoss(j)(y, t).item() == pytest.approx(sum(by_hand).item() / 6, rel=1e-5)
    with pytest.raises(ValueError, match="positive"):
        map_loss(y, t, j=0.0)


def test_map_pushes_wrong_classes_up_mle_does_not() -> None:
    y = torch.tensor([[2.0, 3.0, 4.0]], requires_grad=True)
    t = torch.tensor([0])
    (g_mle,) = torch.autograd.grad(mle_loss(y, t), y)
    (g_map,) = torch.autograd.grad(map_loss(y, t, j=10.0), y)
    assert g_mle.tolist() == [[1.0, 0.0, 0.0]]  # Eq. 8 ignores the other classes
    assert (g_map[0, 1:] < 0).all()  # descent raises the wrong penalties
    assert 0 < g_map[0, 0] < 1


def test_map_with_large_j_is_softmax_cross_entropy_on_minus_penalties() -> None:
    torch.manual_seed(1)
    y = torch.rand(8, 10) * 5
    t = torch.randint(0, 10, (8,))
    ce = nn.functional.cross_entropy(-y, t)
    assert map_loss(y, t, j=60.0).item() == pytest.approx(ce.item(), rel=1e-5)


def test_paper_eps_schedule() -> None:
    got = [paper_eps(p) for p in range(1, 21)]
    assert got == [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 8
    with pytest.raises(ValueError):
        paper_eps(0)


def test_sdlm_step_is_eps_over_mu_plus_h() -> None:
    w = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
    opt = SDLM([w], lr=0.1, mu=0.02)
    w.grad = torch.tensor([1.0, 1.0, -2.0])
    with pytest.raises(RuntimeError, match="set_hessian"):
        opt.step()
    h = torch.tensor([0.0, 0.98, 4.98])
    opt.set_hessian({w: h})
    opt.step()
    expected = torch.tensor([1.0 - 0.1 / 0.02, 2.0 - 0.1 / 1.0, 3.0 + 0.2 / 5.0])
    assert torch.allclose(w.detach(), expected)
    opt.param_groups[0]["lr"] = 0.01  # the per-pass epsilon change must take effect
    w.grad = torch.tensor([0.0, 1.0, 0.0])
    opt.step()
    assert w[1].item() == pytest.approx(expected[1].item() - 0.01)
    with pytest.raises(ValueError, match="non-negative"):
        opt.set_hessian({w: -h - 1})


def test_gauss_newton_single_layer_is_exact() -> None:
    """For one linear layer and E = sum (x - w_D)^2, the diagonal is 2 * mean x_j^2 (no approximation)."""
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 84), nn.Identity(), RBFOutput())
    x = torch.randn(7, 5)
    h = gauss_newton_diagonal(net, x)
    w, b = net[0].weight, net[0].bias
    assert torch.allclose(h[w], 2 * (x**2).mean(0).expand(84, 5))
    assert torch.allclose(h[b], torch.full((84,), 2.0))


def test_gauss_newton_through_activation_matches_jacobian() -> None:
    """One layer + tanh: h = mean over patterns of 2 * f'(a)^2 * x^2, checked with autograd per pattern."""
    torch.manual_seed(3)
    lin, f = nn.Linear(4, 84), ScaledTanh()
    net = nn.Sequential(lin, f, RBFOutput())
    x = torch.randn(6, 4)
    h = gauss_newton_diagonal(net, x)
    ref = torch.zeros_like(lin.weight)
    for p in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda W, xp=x[p]: f(xp @ W.t() + lin.bias), lin.weight.detach())
        ref += 2 * (jac**2).sum(0)  # (84, 84, 4) -> sum over outputs of (d out / d w)^2
    assert torch.allclose(h[lin.weight], ref / len(x), rtol=1e-4, atol=1e-7)


def test_gauss_newton_covers_every_lenet5_parameter() -> None:
    torch.manual_seed(4)
    model = LeNet5Paper()
    x = torch.randn(20, 1, 32, 32)
    h = gauss_newton_diagonal(model, x)
    params = [p for p in model.parameters() if p.requires_grad]
    assert len(h) == len(params)
    assert all(h[p].shape == p.shape and (h[p] >= 0).all() and h[p].sum() > 0 for p in params)
    h_map = gauss_newton_diagonal(model, x, torch.randint(0, 10, (20,)), output_curvature="map")
    assert all((h_map[p] >= 0).all() for p in params)
    with pytest.raises(TypeError, match="MaxPool2d"):
        gauss_newton_diagonal(nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)), torch.randn(1, 1, 8, 8))


def test_sdlm_decreases_the_loss() -> None:
    """The paper's regime: one pattern per update, h from gauss_newton_diagonal, eps = 5e-4."""
    torch.manual_seed(5)
    model = LeNet5Paper(init="sqrt")
    x = torch.randn(40, 1, 32, 32)
    t = torch.randint(0, 10, (40,))
    opt = SDLM(model.parameters(), lr=5e-4)
    opt.set_hessian(gauss_newton_diagonal(model, x))
    before = map_loss(model(x), t).item()
    for _ in range(3):
        for p in range(len(x)):
            loss = map_loss(model(x[p : p + 1]), t[p : p + 1], reduction="sum")
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert map_loss(model(x), t).item() < 0.7 * before
