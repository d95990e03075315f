"""lenet_utils.explain: hooks, Grad-CAM against Captum, CAM against Grad-CAM, the sanity-check tools."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lenet_utils import explain, layers, models, paper
from lenet_utils.models import LeNet5Paper, lenet_d2l, lenet_gap

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "data" / "paper" / "plain_mu1" / "checkpoint.pt"  # the 1998 recipe, mu = 1 (chapter 5)
GAP = REPO / "data" / "explain" / "gap_fashion" / "best.pt"  # lenet_gap on Fashion-MNIST (data/explain/README.md)


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """Small networks and batches: one thread is faster (and does not fight other processes)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _paper_net() -> nn.Module:
    return paper.load_checkpoint(PAPER)


def _gap_nets() -> list[nn.Module]:
    torch.manual_seed(0)
    nets = [lenet_gap().eval()]
    if GAP.is_file():
        from lenet_utils import checkpoint

        net = lenet_gap()
        checkpoint.load(GAP, net)
        nets.append(net.eval())
    return nets


def _inputs(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, size, size, generator=g)  # (n, 1, size, size): a fixed input


# ------------------------------------------------------------------------------------------
# Grad-CAM: the hand-written version equals Captum's LayerGradCam


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("layer", ["C1", "C3"])
def test_grad_cam_equals_captum_on_lenet5(layer: str, relu: bool) -> None:
    from captum.attr import LayerGradCam

    net = _paper_net()
    scores = explain.Scores(net)  # -penalties: the score Grad-CAM explains
    x = _inputs(6, 32) * 1.275 - 0.1  # the paper's range: background -0.1, ink 1.175
    target = torch.tensor([0, 1, 2, 3, 7, 9])
    mine = explain.grad_cam(scores, getattr(net, layer), x, target, relu=relu)
    theirs = LayerGradCam(scores, getattr(net, layer)).attribute(x, target=target, relu_attributions=relu)
    assert mine.shape == theirs.shape == (6, 1, *{"C1": (28, 28), "C3": (10, 10)}[layer])
    assert mine.abs().max() > 0  # not a vacuous comparison of zeros
    torch.testing.assert_close(mine, theirs.detach(), rtol=1e-5, atol=1e-7)


def test_grad_cam_equals_captum_on_a_softmax_lenet() -> None:
    from captum.attr import LayerGradCam

    torch.manual_seed(1)
    net = lenet_d2l().eval()
    x = _inputs(4, 28, seed=1)
    for module in (net[1], net[4]):  # sigmoid after C1 (28x28), after C3 (10x10)
        mine = explain.grad_cam(net, module, x, 5, relu=False)
        theirs = LayerGradCam(net, module).attribute(x, target=5)
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-5, atol=1e-8)


def test_grad_cam_explains_the_negated_penalty() -> None:
    net = _paper_net()
    x = _inputs(2, 32) * 1.275 - 0.1
    on_scores = explain.grad_cam(explain.Scores(net), net.C3, x, 4, relu=False)
    on_penalties = explain.grad_cam(net, net.C3, x, 4, relu=False)
    torch.testing.assert_close(on_scores, -on_penalties)
    assert explain.Scores(net).penalties and not explain.Scores(lenet_d2l()).penalties


# ------------------------------------------------------------------------------------------
# CAM equals Grad-CAM on the GAP network


def test_cam_equals_grad_cam_on_the_gap_network() -> None:
    # With S_c = sum_k w_ck * mean_ij A_k(i, j) + b_c (global average pooling, then one linear
    # layer), dS_c / dA_k(i, j) = w_ck / (H * W) at every position, so Grad-CAM's weight of map k
    # (the mean of that gradient over positions) is alpha_k = w_ck / (H * W), and Grad-CAM's
    # sum_k alpha_k A_k is CAM's sum_k w_ck A_k divided by H * W (before its ReLU, and after it).
    x = _inputs(5, 28, seed=2)
    for net in _gap_nets():
        last = net[-4]  # the ReLU whose maps are averaged
        for c in (0, 6, 9):
            cam = explain.class_activation_map(net, x, c)  # (5, 1, 10, 10)
            hw = cam.shape[-1] * cam.shape[-2]
            torch.testing.assert_close(explain.grad_cam(net, last, x, c, relu=False), cam / hw, rtol=1e-5, atol=1e-7)
            torch.testing.assert_close(explain.grad_cam(net, last, x, c), torch.relu(cam) / hw, rtol=1e-5, atol=1e-7)


def test_cam_spreads_the_class_score_over_positions() -> None:
    x = _inputs(3, 28, seed=3)
    for net in _gap_nets():
        with torch.no_grad():
            scores = net(x)  # (3, 10)
        for c in range(10):
            cam = explain.class_activation_map(net, x, c)
            torch.testing.assert_close(cam.mean(dim=(1, 2, 3)) + net[-1].bias[c], scores[:, c], rtol=1e-5, atol=1e-5)


def test_cam_refuses_a_network_without_global_average_pooling() -> None:
    with pytest.raises(ValueError, match="global average pooling"):
        explain.class_activation_map(lenet_d2l(), _inputs(1, 28), 0)


def test_lenet_gap_shape_parameters_and_cli() -> None:
    from lenet_utils.cli.train import build_parser

    net = lenet_gap()
    assert net(_inputs(2, 28)).shape == (2, 10)
    assert models.count_parameters(net) == 156 + 2416 + (16 * 9 + 1) * 32 + 33 * 32 + 33 * 10 == 8598
    assert isinstance(models.build_model("gap"), nn.Sequential)
    assert build_parser().parse_args(["--model", "gap", "--out", "x"]).model == "gap"


# ------------------------------------------------------------------------------------------
# Hooks and geometry


def test_feature_maps_catch_layer_outputs_and_remove_their_hooks() -> None:
    net = _paper_net()
    x = _inputs(3, 32) * 1.275 - 0.1
    caught = explain.feature_maps(net, x, {"C1": net.C1, "C3": net.C3})
    ref = net.features(x)
    torch.testing.assert_close(net.f(caught["C1"]), ref["C1"])  # the hooks see the maps before squashing
    torch.testing.assert_close(net.f(caught["C3"]), ref["C3"])
    assert not net.C1._forward_hooks and not net.C3._forward_hooks


@pytest.mark.parametrize(("which", "index"), [("paper", "C1"), ("paper", "C3"), ("d2l", 3), ("gap", 8)])
def test_layer_geometry_matches_the_measured_receptive_field(which: str, index: str | int) -> None:
    torch.manual_seed(0)
    if which == "paper":  # the whole network (it checks for 32x32 inputs)
        net: nn.Module = LeNet5Paper(init="sqrt")
        layer, size = getattr(net, index), 32
    else:  # the convolutional part up to the layer, on a larger image: more fields inside it
        full = lenet_d2l() if which == "d2l" else lenet_gap()
        net = full[: int(index) + 1]
        layer, size = net[-1], 48
    jump, offset = explain.layer_geometry(net, layer)
    if which == "gap":  # measure through average pooling and no ReLU: same geometry, every path open
        net = nn.Sequential(*[nn.AvgPool2d(m.kernel_size) if isinstance(m, nn.MaxPool2d) else
                              nn.Identity() if isinstance(m, nn.ReLU) else m for m in net])  # fmt: skip
        layer = net[-1]
    caught = {}
    layer.register_forward_hook(lambda _m, _i, out: caught.__setitem__("A", out))
    x = torch.zeros(1, 1, size, size, requires_grad=True)
    net(x)
    A = caught["A"]  # (1, K, h, w)
    checked = 0
    for i in range(A.shape[-2]):
        for j in (0, A.shape[-1] // 2, A.shape[-1] - 1):
            (g,) = torch.autograd.grad(A[0, :, i, j].sum(), x, retain_graph=True)
            rows, cols = g[0, 0].abs().sum(1).nonzero(), g[0, 0].abs().sum(0).nonzero()
            inside = rows.min() > 0 and rows.max() < size - 1 and cols.min() > 0 and cols.max() < size - 1
            if inside:  # a field cut by the image's edge has its centre moved: compare only whole fields
                assert (rows.min() + rows.max()).item() / 2 == pytest.approx(offset + jump * i)
                assert (cols.min() + cols.max()).item() / 2 == pytest.approx(offset + jump * j)
                checked += 1
    assert checked >= 3


def test_to_input_places_units_at_their_centres() -> None:
    m = torch.zeros(1, 1, 10, 10)
    m[0, 0, 3, 7] = 1.0
    out = explain.to_input(m, 32, 2.0, 6.5)  # C3 of LeNet-5: unit i sits on pixel 6.5 + 2 i
    assert out.shape == (1, 32, 32)
    rows, cols = out[0].sum(1), out[0].sum(0)
    assert (rows * torch.arange(32.0)).sum() / rows.sum() == pytest.approx(6.5 + 2 * 3)
    assert (cols * torch.arange(32.0)).sum() / cols.sum() == pytest.approx(6.5 + 2 * 7)
    same = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(explain.to_input(same, 28, 1.0, 0.0), same[:, 0])  # jump 1, offset 0: as it is


# ------------------------------------------------------------------------------------------
# Attribution methods


def test_attribute_methods_shapes_and_repeatability() -> None:
    net = _paper_net()
    scores = explain.Scores(net)
    x = _inputs(2, 32) * 1.275 - 0.1
    for method in explain.METHODS:
        a = explain.attribute(scores, x, 3, method, layer=net.C3, baseline=-0.1)
        assert a.shape == (2, 32, 32) and torch.isfinite(a).all() and a.abs().max() > 0, method
    state = torch.get_rng_state()
    s1 = explain.attribute(scores, x, 3, "smoothgrad", samples=8, seed=5)
    s2 = explain.attribute(scores, x, 3, "smoothgrad", samples=8, seed=5)
    torch.testing.assert_close(s1, s2)
    assert torch.equal(state, torch.get_rng_state())  # the global random state is left alone
    with pytest.raises(ValueError, match="grad_cam needs layer"):
        explain.attribute(scores, x, 3, "grad_cam")
    with pytest.raises(ValueError, match="unknown method"):
        explain.attribute(scores, x, 3, "guided")


def test_integrated_gradients_add_up_to_the_score_difference() -> None:
    # completeness (Sundararajan et al. 2017): the attributions sum to S(x) - S(baseline)
    net = _paper_net()
    scores = explain.Scores(net)
    x = _inputs(3, 32) * 1.275 - 0.1
    ig = explain.attribute(scores, x, 2, "integrated_gradients", baseline=-0.1, steps=64)
    with torch.no_grad():
        diff = scores(x)[:, 2] - scores(torch.full_like(x, -0.1))[:, 2]
    torch.testing.assert_close(ig.sum(dim=(1, 2)), diff, rtol=0.02, atol=0.05)


# ------------------------------------------------------------------------------------------
# Sanity-check tools and summaries


def test_rank_correlation_is_spearman_with_ties() -> None:
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (4, 50), generator=g).double()  # many ties
    b = a + torch.randn(4, 50, generator=g, dtype=torch.double) * 2
    r = explain.rank_correlation(a, b, absolute=False)
    assert r.tolist() == pytest.approx([spearmanr(u, v).statistic for u, v in zip(a, b, strict=True)])
    assert explain.rank_correlation(a, -a).tolist() == pytest.approx([1.0] * 4)  # magnitudes compared
    assert explain.rank_correlation(a, -a, absolute=False).tolist() == pytest.approx([-1.0] * 4)
    assert torch.isnan(explain.rank_correlation(torch.ones(1, 5), torch.arange(5.0).view(1, 5))).all()
    mask = torch.rand(4, 50, generator=g) > 0.3
    masked = explain.rank_correlation(a, b, absolute=False, mask=mask)
    expected = [spearmanr(u[m], v[m]).statistic for u, v, m in zip(a, b, mask, strict=True)]
    assert masked.tolist() == pytest.approx(expected)


def test_cascading_randomization_redraws_top_down_and_leaves_the_model() -> None:
    net = _paper_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = torch.get_rng_state()
    order = ["F6", "C5", "S4", "C3", "S2", "C1"]
    init = lambda m: layers.uniform_fan_in_(m, sqrt=True)
    copies = explain.cascading_randomization(net, order, init=init, seed=0)
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    assert [name for name, _ in copies] == order
    for i, (_, copy) in enumerate(copies):
        for j, name in enumerate(order):
            same = torch.equal(getattr(copy, name).weight, getattr(net, name).weight)
            assert same == (j > i), (i, name)
    again = explain.cascading_randomization(net, order, init=init, seed=0)
    assert torch.equal(again[2][1].C5.weight, copies[2][1].C5.weight)
    with pytest.raises(ValueError, match="no module named"):
        explain.cascading_randomization(net, ["C7"])


def test_summaries() -> None:
    y = torch.tensor([0, 1, 1, 2, 2, 2])
    p = torch.tensor([0, 2, 1, 2, 0, 2])
    cm = explain.confusion_matrix(y, p, classes=3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 2]]
    first, second, margin = explain.top_two(torch.tensor([[0.1, 0.7, 0.3], [-5.0, -1.0, -2.0]]))
    assert first.tolist() == [1, 1] and second.tolist() == [2, 2]
    assert margin.tolist() == pytest.approx([0.4, 1.0])
    k = torch.randn(3, 5, 5)
    spec = explain.frequency_response(k, 32)
    assert spec.shape == (3, 32, 32)
    torch.testing.assert_close(spec[:, 16, 16], k.sum(dim=(1, 2)).abs())  # the centre answers to a constant


def test_explanation_explorer_faces() -> None:
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from lenet_utils import widgets

    net = _paper_net()
    scores = explain.Scores(net)
    x = _inputs(2, 32) * 1.275 - 0.1
    names = [str(i) for i in range(10)]
    box = widgets.explanation_explorer(scores, x, [3, 5], class_names=names, layers={"C3": net.C3, "C1": net.C1},
                                       baseline=-0.1)  # fmt: skip
    assert len(box.children) == 3
    html = widgets.explanation_animation(scores, x, [3, 5], class_names=names, layer=("C3", net.C3),
                                         baseline=-0.1, methods=["gradient", "grad_cam"])  # fmt: skip
    assert html.data.count("data:image/png") == 2
