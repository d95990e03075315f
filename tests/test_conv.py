"""Convolution and pooling by hand (lenet_utils.handconv) against PyTorch, d2l and SciPy; the
chapter-2 figures (lenet_utils.viz) and explorers (lenet_utils.widgets) run headless."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch.nn import functional as F

from lenet_utils import handconv, layers, models, viz, widgets

# The worked example of chapter 2 (the classic 5x5 binary image and X-shaped kernel).
X = torch.tensor(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=torch.float32
)
K = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=torch.float32)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_worked_example_exact_output() -> None:
    Y = handconv.corr2d(X, K)
    assert Y.tolist() == [[4, 3, 4], [2, 4, 3], [2, 3, 4]]
    assert handconv.cell_arithmetic(X, K, 0, 0) == "1*1 + 1*0 + 1*1 + 0*0 + 1*1 + 1*0 + 0*1 + 0*0 + 1*1 = 4"


def test_three_implementations_agree_on_the_worked_example() -> None:
    from d2l import torch as d2l

    ours = handconv.corr2d(X, K)
    assert torch.equal(ours, F.conv2d(X.view(1, 1, 5, 5), K.view(1, 1, 3, 3))[0, 0])
    assert torch.equal(ours, d2l.corr2d(X, K))


@pytest.mark.parametrize("seed", range(5))
def test_three_implementations_agree_on_random_inputs(seed: int) -> None:
    from d2l import torch as d2l

    g = torch.Generator().manual_seed(seed)
    h, w = torch.randint(6, 15, (2,), generator=g).tolist()
    kh, kw = torch.randint(1, 6, (2,), generator=g).tolist()
    Xr = torch.randn(h, w, generator=g, dtype=torch.float64)
    Kr = torch.randn(kh, kw, generator=g, dtype=torch.float64)
    ours = handconv.corr2d(Xr, Kr)
    assert ours.shape == (h - kh + 1, w - kw + 1)
    torch.testing.assert_close(ours, F.conv2d(Xr.view(1, 1, h, w), Kr.view(1, 1, kh, kw))[0, 0])
    torch.testing.assert_close(ours, d2l.corr2d(Xr, Kr).to(ours.dtype))


@pytest.mark.parametrize(("padding", "stride"), [(0, 2), (1, 1), (2, 3), (1, 2)])
def test_padding_and_stride_match_conv2d(padding: int, stride: int) -> None:
    g = torch.Generator().manual_seed(padding * 10 + stride)
    Xr = torch.randn(9, 11, generator=g, dtype=torch.float64)
    Kr = torch.randn(3, 4, generator=g, dtype=torch.float64)
    ours = handconv.corr2d(Xr, Kr, padding=padding, stride=stride)
    ref = F.conv2d(Xr.view(1, 1, 9, 11), Kr.view(1, 1, 3, 4), padding=padding, stride=stride)[0, 0]
    torch.testing.assert_close(ours, ref)


def test_convolution_is_correlation_with_flipped_kernel() -> None:
    scipy_signal = pytest.importorskip("scipy.signal")
    g = torch.Generator().manual_seed(1)
    Xr = torch.randn(8, 7, generator=g, dtype=torch.float64)
    Kr = torch.randn(3, 3, generator=g, dtype=torch.float64)
    conv = handconv.convolve2d(Xr, Kr)
    assert not torch.allclose(conv, handconv.corr2d(Xr, Kr))  # an asymmetric kernel tells them apart
    assert conv.numpy() == pytest.approx(scipy_signal.convolve2d(Xr.numpy(), Kr.numpy(), mode="valid"))
    assert handconv.corr2d(Xr, Kr).numpy() == pytest.approx(
        scipy_signal.correlate2d(Xr.numpy(), Kr.numpy(), mode="valid")
    )


def test_multi_input_channels_match_conv2d() -> None:
    g = torch.Generator().manual_seed(2)
    Xr = torch.randn(4, 7, 7, generator=g, dtype=torch.float64)
    Kr = torch.randn(4, 3, 3, generator=g, dtype=torch.float64)
    ours = handconv.corr2d_multi_in(Xr, Kr, 0.5)
    ref = F.conv2d(Xr.unsqueeze(0), Kr.unsqueeze(0), torch.tensor([0.5], dtype=torch.float64))[0, 0]
    torch.testing.assert_close(ours, ref)


def test_multi_input_reproduces_one_sparse_c3_map() -> None:
    torch.manual_seed(0)
    c3 = layers.SparseConv2d(6, 5, layers.C3_TABLE)
    S2 = torch.randn(6, 14, 14)
    with torch.no_grad():
        full = c3(S2.unsqueeze(0))[0]  # (16, 10, 10)
        for o in (0, 7, 15):
            inputs = list(layers.C3_TABLE[o])
            ours = handconv.corr2d_multi_in(S2[inputs], c3.dense_weight()[o, inputs], c3.bias[o])
            torch.testing.assert_close(ours, full[o], atol=1e-5, rtol=1e-5)


def test_output_size_formula_against_pytorch() -> None:
    cases = 0
    for n, k, p, s in itertools.product([5, 7, 8, 14, 28, 32], [1, 2, 3, 5, 7], [0, 1, 2, 3], [1, 2, 3, 4]):
        if k > n + 2 * p:
            with pytest.raises(ValueError, match="exceeds the padded input"):
                handconv.output_size(n, k, p, s)
            continue
        out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), padding=p, stride=s)
        assert handconv.output_size(n, k, p, s) == out.shape[-1], (n, k, p, s)
        cases += 1
    assert cases == 476  # the count the chapter quotes
    assert handconv.output_size(28, 5, 2) == handconv.output_size(32, 5) == 28  # d2l's padding 2 = the paper's 32x32


def test_pooling_by_hand_worked_example() -> None:
    P = torch.tensor([[1, 3, 2, 1], [4, 6, 5, 0], [7, 2, 9, 8], [1, 0, 3, 4]], dtype=torch.float32)
    assert handconv.pool2d(P, 2, mode="max").tolist() == [[6, 5], [7, 9]]
    assert handconv.pool2d(P, 2, mode="avg").tolist() == [[3.5, 2.0], [2.5, 6.0]]
    assert handconv.pool2d(P, 2, mode="sum").tolist() == [[14, 8], [10, 24]]
    assert handconv.pool2d(P, 2, stride=1, mode="max").tolist() == [[6, 6, 5], [7, 9, 9], [7, 9, 9]]


@pytest.mark.parametrize(("size", "stride"), [(2, None), (2, 1), (3, 2), (3, 3)])
def test_pooling_by_hand_against_pytorch(size: int, stride: int | None) -> None:
    g = torch.Generator().manual_seed(size * 7 + (stride or 0))
    Xr = torch.randn(10, 9, generator=g)
    t = Xr.view(1, 1, 10, 9)
    for mode, pool in (("max", F.max_pool2d), ("avg", F.avg_pool2d)):
        torch.testing.assert_close(handconv.pool2d(Xr, size, stride=stride, mode=mode), pool(t, size, stride)[0, 0])


def test_pool2d_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        handconv.pool2d(torch.zeros(4, 4), mode="median")
    with pytest.raises(ValueError, match="one 2-D map"):
        handconv.pool2d(torch.zeros(1, 4, 4))


def test_lenet_subsampling_is_sum_times_coefficient_plus_bias() -> None:
    sub = layers.Subsampling(1)
    with torch.no_grad():
        sub.weight.fill_(0.3)
        sub.bias.fill_(-0.7)
    x = torch.randn(6, 6)
    torch.testing.assert_close(sub(x.view(1, 1, 6, 6))[0, 0], 0.3 * handconv.pool2d(x, 2, mode="sum") - 0.7)
    assert models.count_parameters(layers.Subsampling(6)) == 12
    assert models.count_parameters(layers.Subsampling(16)) == 32


def test_receptive_fields_formula_and_measurement() -> None:
    fields = handconv.receptive_fields()
    assert [(r.name, r.size, r.jump) for r in fields] == [
        ("C1", 5, 1), ("S2", 6, 2), ("C3", 14, 2), ("S4", 16, 4), ("C5", 32, 4),
    ]  # fmt: skip
    torch.manual_seed(0)
    net = models.LeNet5Paper().double()
    x = torch.randn(1, 1, 32, 32, dtype=torch.float64)
    units = {"C1": (0, 0, 13, 13), "S2": (0, 0, 6, 6), "C3": (0, 0, 4, 4), "S4": (0, 0, 2, 2), "C5": (0, 0)}
    for r in fields:
        _, _, h, w = handconv.gradient_footprint(lambda t, name=r.name: net.features(t)[name], x, units[r.name])
        assert (h, w) == (r.size, r.size), r.name


def test_conv_windows_follow_stride_and_padding() -> None:
    wins = handconv.conv_windows((5, 5), (3, 3), padding=1, stride=2)
    assert len(wins) == 9 and wins[0] == (0, 0, 0, 0) and wins[-1] == (2, 2, 4, 4)


# ----------------------------------------------------------------------------- figures, explorers


def test_plot_conv_step_every_frame_and_reuse() -> None:
    fig = viz.plot_conv_step(X, K, 0)
    assert isinstance(fig, plt.Figure)
    for step in (4, 8, None):
        assert viz.plot_conv_step(X, K, step, padding=1, stride=2, fig=fig) is fig
    big = viz.plot_conv_step(torch.rand(12, 12), torch.rand(5, 5), 3)  # long sums are summarised
    assert isinstance(big, plt.Figure)


def test_other_chapter2_figures_return_figures() -> None:
    P = torch.arange(16.0).view(4, 4)
    figs = [
        viz.plot_conv_geometry(7, 3, 1, 2),
        viz.plot_conv_geometry(10, 5, 2, 1),
        viz.plot_multichannel(torch.rand(2, 4, 4), torch.rand(2, 2, 2), 0.5, activation=torch.tanh),
        viz.plot_pooling(P, 2),
        viz.plot_pooling(P, 2, 1),
        viz.plot_receptive_fields(torch.rand(32, 32), [("a", (13, 13, 5, 5)), ("b", (0, 0, 32, 32))]),
        viz.show_maps([torch.rand(5, 5), torch.randn(5, 5)], ["a", "b"]),
    ]
    assert all(isinstance(f, plt.Figure) for f in figs)


def test_animations_are_small_and_have_one_frame_per_step() -> None:
    html = widgets.conv_animation(X, K).data
    assert html.count("frames[") >= 10 and len(html) < 400_000  # 9 windows + the finished map
    html = widgets.shape_animation([(7, 3, 1, 2), (8, 3, 0, 2)]).data
    assert html.count("frames[") >= 2 and len(html) < 400_000


def test_live_explorers_build_headless() -> None:
    pytest.importorskip("ipywidgets")
    box = widgets.conv_explorer(X, K)
    sliders = {c.description: c for row in box.children[:2] for c in row.children}
    assert sliders["window"].max == 9
    sliders["stride"].value = 2  # the step range follows the geometry: 2x2 windows + the finished map
    assert sliders["window"].max == 4
    assert widgets.shape_explorer(7, 3, 1, 2) is not None
