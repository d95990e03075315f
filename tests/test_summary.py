"""Layer tables from lenet_utils.summary against the paper's numbers (LeCun et al. 1998, §II.B)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lenet_utils import models
from lenet_utils.summary import print_shapes, summarize

# layer: (output shape, trainable parameters, connections) — the paper's §II.B, Fig. 2
PAPER = {
    "C1": ((1, 6, 28, 28), 156, 122_304),
    "S2": ((1, 6, 14, 14), 12, 5_880),
    "C3": ((1, 16, 10, 10), 1_516, 151_600),
    "S4": ((1, 16, 5, 5), 32, 2_000),
    "C5": ((1, 120, 1, 1), 48_120, 48_120),
    "F6": ((1, 84), 10_164, 10_164),
    "output": ((1, 10), 0, 840),
}


def test_paper_network_table() -> None:
    s = summarize(models.LeNet5Paper(), (1, 1, 32, 32))
    got = {r.name: (r.output_shape, r.params, r.connections) for r in s}
    assert got == PAPER
    assert (s.params, s.connections, s.fixed) == (60_000, 340_908, 840)
    assert s["output"].fixed == 840 and s["C1"].kernel == "5x5" and s["C3"].kernel == "5x5, Table I"
    assert s["C1"].modules == "Conv2d(1, 6, 5) → ScaledTanh"
    assert s["C3"].params_formula == "60·5·5 + 16"
    assert s["S2"].connections_formula == "6·14·14 × (2·2 + 1)"


def test_d2l_table() -> None:
    s = summarize(models.lenet_d2l(), (1, 1, 28, 28))
    assert [r.name for r in s] == ["C1", "S2", "C3", "S4", "F5", "F6", "output"]
    assert [r.params for r in s] == [156, 0, 2_416, 0, 48_120, 10_164, 850]
    assert s.params == 61_706 and s.fixed == 0
    # C1 is padded: 28x28 in, 28x28 out, same connections as the paper's unpadded 32x32 C1
    assert s["C1"].input_shape == (1, 1, 28, 28) and s["C1"].output_shape == (1, 6, 28, 28)
    assert s["C1"].connections == 122_304 and s["C1"].kernel == "5x5, pad 2"
    # average pooling: 4 links per unit, no coefficient, no bias
    assert s["S2"].connections == 6 * 14 * 14 * 4
    # full C3: 16 maps x 10x10 units x (6·25 + 1)
    assert s["C3"].connections == 16 * 100 * 151 == 241_600
    assert s["F5"].modules == "Flatten → Linear(400, 120) → Sigmoid" and s["F5"].input_shape == (1, 16, 5, 5)
    assert s["output"].connections == 850


def test_modern_and_theano_tables() -> None:
    s = summarize(models.lenet_modern(), (1, 1, 32, 32))
    assert [r.params for r in s] == [156, 0, 2_416, 0, 48_120, 10_164, 850] and s.params == 61_706
    assert s["S2"].modules == "MaxPool2d(2)" and s["C1"].modules == "Conv2d(1, 6, 5) → ReLU"
    t = summarize(models.lenet_theano(), (1, 1, 28, 28))
    assert [r.name for r in t] == ["C1", "S2", "C3", "S4", "F5", "output"]
    assert t.params == 431_080 and t["S2"].modules == "MaxPool2d(2) → Tanh"


@pytest.mark.parametrize(("name", "side"), [("paper", 32), ("d2l", 28), ("modern", 32), ("theano", 28)])
def test_summary_agrees_with_count_parameters(name: str, side: int) -> None:
    net = models.build_model(name)
    s = summarize(net, (1, 1, side, side))
    assert s.params == models.count_parameters(net)
    assert s.layers[-1].output_shape == (1, 10)


def test_shared_modules_are_counted_once_and_frozen_weights_are_fixed() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.F1 = nn.Linear(4, 4)
            self.act = nn.Tanh()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.F1(self.act(self.F1(x))))

    net = Twice()
    s = summarize(net, torch.zeros(1, 4))
    assert [r.name for r in s] == ["F1", "output"]
    assert [r.params for r in s] == [20, 0]
    assert [r.connections for r in s] == [20, 20]  # two passes through the same weights
    net.F1.bias.requires_grad_(False)
    s = summarize(net, torch.zeros(1, 4))
    assert (s.params, s.fixed) == (16, 4)


def test_summary_leaves_model_untouched() -> None:
    net = models.lenet_d2l()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    summarize(net, (2, 1, 28, 28))
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not any(m._forward_hooks for m in net.modules())


def test_wrong_input_size_says_what_to_do() -> None:
    with pytest.raises(ValueError, match=r"does not accept an input of shape \(1, 1, 28, 28\).*\(B, 1, 32, 32\)"):
        summarize(models.lenet_modern(), (1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"expects \(B, 1, 32, 32\)"):
        summarize(models.LeNet5Paper(), (1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"must be \(B, C, H, W\)"):
        summarize(models.LeNet5Paper(), (32, 32))


def test_text_and_frame() -> None:
    s = summarize(models.LeNet5Paper(), name="LeNet-5 (1998)")
    text = str(s)
    assert text.splitlines()[0] == "LeNet-5 (1998), input (1, 1, 32, 32)"
    assert "60,000" in text and "340,908" in text and "16@10x10" in text
    frame = s.to_frame(formulas=True)
    assert list(frame.index) == [*PAPER, "total"]
    assert frame.loc["total", "params"] == 60_000 and frame.loc["total", "connections"] == 340_908
    assert frame.loc["C1", "connections = "] == "6·28·28 × (1·5·5 + 1)"
    assert "<table" in s._repr_html_()
    with pytest.raises(KeyError, match="no layer 'C7'"):
        s["C7"]


def test_print_shapes() -> None:
    lines: list[str] = []
    print_shapes(models.lenet_d2l(), (1, 1, 28, 28), file=lines.append)
    assert lines[0] == "Sequential: input (1, 1, 28, 28)"
    assert lines[3].split()[0] == "C3" and "(1, 16, 10, 10)" in lines[3]
    lines.clear()
    print_shapes(models.LeNet5Paper(), (1, 1, 32, 32), per_module=True, file=lines.append)
    assert len(lines) == 1 + 13
    assert lines[5].split()[0] == "SparseConv2d(6," and lines[5].endswith("output shape: (1, 16, 10, 10)")


def test_figures_are_drawn_from_the_summary() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lenet_utils import layers, viz

    fig = viz.draw_lenet_architecture(summarize(models.LeNet5Paper()), image=torch.zeros(32, 32))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"C3\n16@10x10", "1,516 params", "0 params\n+840 fixed", "INPUT\n32x32"} <= texts
    fig2 = viz.draw_lenet_architecture(summarize(models.lenet_d2l(), (1, 1, 28, 28)))
    assert "2,416 params" in {t.get_text() for t in fig2.axes[0].texts}
    fig3 = viz.draw_connection_table(layers.C3_TABLE)
    cells = [t for t in fig3.axes[0].texts if t.get_text() == "X"]
    assert len(cells) == 60
    assert "total 1,516" in fig3.axes[0].get_xlabel()
    plt.close("all")
