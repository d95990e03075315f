"""The model zoo (lenet_utils.zoo) and its training path (sweep ``model`` setting, ``train --model``).

Parameter counts are checked against closed-form formulas written here from the papers' layer
tables (not from the builders), and the original configurations against the figures the papers
publish: AlexNet's 60 million (Krizhevsky et al. 2012), VGG-11's 133 million (Simonyan &
Zisserman 2015, Table 2), GoogLeNet's 6.8 million (Szegedy et al. 2015, Table 1), ResNet-18's
1.8 billion multiply-adds (He et al. 2016, Table 1) and the CIFAR ResNets' 0.27-1.7 million
(He et al. 2016, Table 6).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from lenet_utils import summary, sweep, zoo
from lenet_utils.cli import train as cli_train
from lenet_utils.models import count_parameters, lenet_d2l

REPO = Path(__file__).resolve().parents[1]
SCALED = [name for name in zoo.MODELS if name not in zoo.ORIGINALS]


# --------------------------------------------------------------------------------------------
# Closed forms: parameters of each architecture, from its layer table


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cout * (cin * k * k + int(bias))


def lin(i: int, o: int) -> int:
    return o * (i + 1)


def alexnet_params(d: int, original: bool, cin: int = 1, classes: int = 10) -> int:
    c1, c2, c3, c4, c5, h = (c // d for c in (96, 256, 384, 384, 256, 4096))
    side = 5 if original else 2  # 224 -> 54 -> 26 -> 12 -> 5; 28 -> 13 -> 6 -> 2
    convs = conv(cin, c1, 11 if original else 5) + conv(c1, c2, 5) + conv(c2, c3, 3) + conv(c3, c4, 3) + conv(c4, c5, 3)
    return convs + lin(c5 * side * side, h) + lin(h, h) + lin(h, classes)


def vgg_params(d: int, original: bool, cin: int = 1, classes: int = 10) -> int:
    total, c_in = 0, cin
    for n, c in ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)):  # VGG-11, Table 1 column A
        for _ in range(n):
            total += conv(c_in, c // d, 3)
            c_in = c // d
    side = 7 if original else 1  # 224 / 2^5; 32 / 2^5
    h = 4096 // d
    return total + lin(c_in * side * side, h) + lin(h, h) + lin(h, classes)


def nin_params(d: int, original: bool, cin: int = 1, classes: int = 10) -> int:
    def block(a: int, b: int, k: int) -> int:
        return conv(a, b, k) + 2 * conv(b, b, 1)

    c1, c2, c3 = 96 // d, 256 // d, 384 // d
    return block(cin, c1, 11 if original else 5) + block(c1, c2, 5) + block(c2, c3, 3) + block(c3, classes, 3)


GOOGLENET_TABLE_1 = [  # #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj: 3a, 3b, 4a-4e, 5a, 5b
    (64, 96, 128, 16, 32, 32), (128, 128, 192, 32, 96, 64),
    (192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
    (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128),
    (256, 160, 320, 32, 128, 128), (384, 192, 384, 48, 128, 128),
]  # fmt: skip


def googlenet_params(d: int, original: bool, cin: int = 1, classes: int = 10) -> int:
    total = conv(cin, 64 // d, 7 if original else 3) + conv(64 // d, 64 // d, 1) + conv(64 // d, 192 // d, 3)
    c_in = 192 // d
    for row in GOOGLENET_TABLE_1:
        a, r3, b, r5, c, p = (v // d for v in row)
        total += conv(c_in, a, 1) + conv(c_in, r3, 1) + conv(r3, b, 3) + conv(c_in, r5, 1) + conv(r5, c, 5)
        total += conv(c_in, p, 1)
        c_in = a + b + c + p
    return total + lin(c_in, classes)


def resnet_params(d: int, original: bool, cin: int = 1, classes: int = 10) -> int:
    w = [c // d for c in (64, 128, 256, 512)]
    total = conv(cin, w[0], 7 if original else 3) + 2 * w[0]  # stem + its BN (scale and shift)
    c_in = w[0]
    for c in w:
        for block in range(2):
            total += conv(c_in, c, 3) + 2 * c + conv(c, c, 3) + 2 * c
            if block == 0 and c_in != c:
                total += conv(c_in, c, 1)  # projection shortcut
            c_in = c
    return total + lin(c_in, classes)


def deep_params(depth: int, bn: bool, widths: tuple[int, int, int], cin: int = 1, classes: int = 10) -> int:
    n = (depth - 2) // 6
    total = conv(cin, widths[0], 3, bias=not bn) + (2 * widths[0] if bn else 0)
    c_in = widths[0]
    for c in widths:
        for _ in range(n):
            total += conv(c_in, c, 3, bias=not bn) + conv(c, c, 3, bias=not bn) + (4 * c if bn else 0)
            c_in = c
    return total + lin(c_in, classes)  # option A shortcuts have no parameter


def expected_params(name: str) -> int:
    """The closed form of every network of the zoo, by name."""
    d, o = zoo.WIDTH_DIVISOR, False
    if name in zoo.ORIGINALS:
        name, d, o = name.split("_")[0].rstrip("0123456789"), 1, True
    closed = {"alexnet": alexnet_params, "vgg": vgg_params, "nin": nin_params, "googlenet": googlenet_params,
              "resnet": resnet_params}  # fmt: skip
    if name in closed:
        return closed[name](d, o)
    if name == "lenet":  # d2l's LeNet: 6 and 16 5x5 kernels, 120-84-10
        return conv(1, 6, 5) + conv(6, 16, 5) + lin(16 * 5 * 5, 120) + lin(120, 84) + lin(84, 10)
    depth = int(name.removeprefix("plain").removeprefix("residual").removesuffix("_bn"))
    return deep_params(depth, name.endswith("_bn"), (8, 16, 32))


# --------------------------------------------------------------------------------------------
# Every network builds, runs, and has the parameters of its closed form


@pytest.mark.parametrize("name", SCALED)
def test_scaled_networks_run_on_a_28x28_batch(name: str) -> None:
    torch.manual_seed(0)
    net = zoo.build(name)
    out = net(torch.rand(2, 1, 28, 28))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert count_parameters(net) == expected_params(name)


@pytest.mark.parametrize("name", list(zoo.ORIGINALS))
def test_original_configurations_run_on_a_28x28_batch(name: str) -> None:
    """d2l's sizes, resized inside the model: shapes and counts on the ``meta`` device (VGG-11
    has 129 million weights), one real forward pass for the ones that fit a test's time."""
    with torch.device("meta"):
        net = zoo.build(name)
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert count_parameters(net) == expected_params(name)
    if name != "vgg11_224":  # 7.5 GMAC per image: too slow for a unit test on the CPU
        torch.manual_seed(0)
        out = zoo.build(name).eval()(torch.rand(2, 1, 28, 28))
        assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_width_divisor_is_the_only_difference_between_scaled_widths() -> None:
    assert count_parameters(zoo.alexnet(width_divisor=4)) == alexnet_params(4, False)
    assert count_parameters(zoo.googlenet(width_divisor=2)) == googlenet_params(2, False)
    with pytest.raises(ValueError, match="width_divisor"):
        zoo.vgg(width_divisor=0)


def test_original_parameter_counts_match_the_published_figures() -> None:
    with torch.device("meta"):
        nets = {n: getattr(zoo, n)(original=True, in_channels=3, num_classes=1000)
                for n in ("alexnet", "vgg", "googlenet", "resnet")}  # fmt: skip
        cifar = {d: zoo.deep_net(depth=d, original=True, in_channels=3) for d in (20, 32, 44, 56, 110)}
    # VGG-11 = configuration A: 133 million (Simonyan & Zisserman 2015, Table 2)
    assert round(count_parameters(nets["vgg"]) / 1e6) == 133
    # GoogLeNet: Table 1's column of parameters sums to 6.8 million (biases and rounding aside)
    assert abs(count_parameters(nets["googlenet"]) / 6.7977e6 - 1) < 0.04
    # d2l's AlexNet has 5x5 final maps (6400 inputs to FC6) and no two-GPU groups; with the paper's
    # 6x6 maps and grouped conv2/conv4/conv5 it is the paper's network, "60 million parameters"
    alex = count_parameters(nets["alexnet"]) + (9216 - 6400) * 4096
    alex -= 256 * 48 * 25 + 384 * 192 * 9 + 256 * 192 * 9  # half of each grouped kernel's inputs
    assert alex == 60_965_224 and round(alex / 1e6) in (60, 61)
    # ResNet-18 at 224x224: 1.8 x 10^9 multiply-adds (He et al. 2016, Table 1)
    assert round(zoo.count_macs(nets["resnet"], (1, 3, 224, 224)) / 1e8) == 18
    # the CIFAR-10 plain/residual nets: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M (He et al. 2016, Table 6)
    published = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}
    for depth, millions in published.items():
        assert round(count_parameters(cifar[depth]) / 1e6, 2 if depth < 110 else 1) == millions, depth
        assert count_parameters(cifar[depth]) == deep_params(depth, True, (16, 32, 64), cin=3)


def test_plain_and_residual_twins_have_identical_layers() -> None:
    for depth in (8, 14, 20):
        for bn in ("", "_bn"):
            plain, res = zoo.build(f"plain{depth}{bn}"), zoo.build(f"residual{depth}{bn}")
            assert [p.shape for p in plain.parameters()] == [p.shape for p in res.parameters()]
            assert zoo.count_macs(plain) == zoo.count_macs(res)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        zoo.deep_net(depth=10)


def test_a_residual_block_with_zero_weights_is_the_identity() -> None:
    """He et al. 2016, §3.1: an identity is as easy as F = 0 -- not so for the plain block."""
    x = torch.rand(2, 8, 7, 7)  # non-negative: the final ReLU keeps it
    for shortcut in (True, False):
        block = zoo.TwoConvBlock(8, 8, shortcut=shortcut, batch_norm=False)
        nn.init.zeros_(block.conv1.weight), nn.init.zeros_(block.conv2.weight)
        nn.init.zeros_(block.conv1.bias), nn.init.zeros_(block.conv2.bias)
        assert torch.equal(block(x), x if shortcut else torch.zeros_like(x))
    down = zoo.TwoConvBlock(8, 16, stride=2, shortcut=True, batch_norm=True)
    assert down(x).shape == (2, 16, 4, 4)


def test_inception_concatenates_its_four_branches() -> None:
    block = zoo.Inception(192, 64, (96, 128), (16, 32), 32)  # 3a
    assert block(torch.rand(1, 192, 7, 7)).shape == (1, 64 + 128 + 32 + 32, 7, 7) and block.out_channels == 256


# --------------------------------------------------------------------------------------------
# Multiply-accumulates


def test_macs_of_a_hand_computable_network() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(1), nn.Flatten(), nn.Linear(2 * 3 * 3, 4))
    # 5x5 input: conv -> 2 maps of 3x3, each value a sum of 1*3*3 products; linear: 4 outputs x 18 inputs
    assert zoo.count_macs(net, (1, 1, 5, 5)) == 2 * 3 * 3 * 9 + 4 * 18 == 234
    grouped = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2)  # 8x8 -> 4 maps of 4x4, 2*3*3 products each
    assert zoo.count_macs(grouped, (3, 4, 8, 8)) == 4 * 4 * 4 * 18  # per example, whatever the batch


def test_macs_of_lenet_and_the_summary_tables_connections() -> None:
    """d2l's LeNet, by hand: C1 6x28x28 outputs x 25, C3 16x10x10 x 150, then 400x120, 120x84, 84x10.
    The summary table (chapter 3) counts connections: the same products plus one per bias and one
    per pooled input."""
    net = lenet_d2l()
    macs = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    assert zoo.count_macs(net) == macs == 416_520
    biases = 6 * 28 * 28 + 16 * 10 * 10 + 120 + 84 + 10
    pooled = 6 * 14 * 14 * 4 + 16 * 5 * 5 * 4
    assert summary.summarize(net, (1, 1, 28, 28)).connections == macs + biases + pooled


@pytest.mark.parametrize("name", ["alexnet", "googlenet", "resnet", "residual14_bn"])
def test_summary_tool_reads_the_zoo(name: str) -> None:
    """Chapter 3's layer table works on the zoo: same parameters, connections >= MACs."""
    net = zoo.build(name)
    s = summary.summarize(net, (1, 1, 28, 28), name=name)
    assert s.params == count_parameters(net)
    assert s.connections >= zoo.count_macs(net)
    assert zoo.profile(name) == {"model": name, "params": s.params, "macs": zoo.count_macs(net)}


# --------------------------------------------------------------------------------------------
# VGG's receptive-field argument, numerically


def test_two_stacked_3x3_convolutions_see_a_5x5_window() -> None:
    """Simonyan & Zisserman 2015, §2.3: two 3x3 layers have a 5x5 effective receptive field,
    three a 7x7 one. Measured by the gradient of one output unit with respect to the input."""
    torch.manual_seed(0)
    two = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 3))
    with torch.no_grad():
        for p in two.parameters():
            p.abs_()  # positive weights: no cancellation, every ReLU open
    x = torch.rand(1, 1, 11, 11, requires_grad=True)
    out = two(x)  # (1, 1, 7, 7)
    out[0, 0, 3, 3].backward()
    seen = x.grad[0, 0] != 0
    assert seen.sum() == 25 and seen[3:8, 3:8].all()  # exactly the 5x5 window around the centre
    assert zoo.receptive_field(two, (1, 1, 11, 11)) == (5, 5)
    three = nn.Sequential(*[nn.Conv2d(1, 1, 3) for _ in range(3)])
    assert zoo.receptive_field(three) == (7, 7) and zoo.receptive_field(nn.Conv2d(1, 1, 5)) == (5, 5)
    # a VGG block of two convolutions (before its pooling) sees 5x5 too, and has fewer weights
    block = zoo.vgg_block(2, 1, 1)[:-1]
    assert zoo.receptive_field(block) == (5, 5)
    assert 2 * 3 * 3 < 5 * 5


# --------------------------------------------------------------------------------------------
# The training path: the sweep's ``model`` setting and ``train --model``

TINY = {"epochs": 1, "train_subset": 256, "test_subset": 64, "batch_size": 64, "lr": 0.05}


def test_lenet_runs_keep_their_ids_and_their_files_their_columns() -> None:
    """Adding ``model`` changed no committed run: ids recomputed from committed rows match."""
    rows = sweep.read_results(REPO / "data/results/lr.csv")[:5]
    assert rows
    for row in rows:
        config = {k: row[k] for k in sweep.DEFAULTS}
        assert sweep.Run(config, row["seed"]).run_id == row["run_id"]
        assert sweep.Run({**config, "model": "lenet"}, row["seed"]).run_id == row["run_id"]
    spec = sweep.load_spec({"name": "x", "points": [{}, {"model": "lenet", "lr": 0.1}]})
    assert all("model" not in c for c in spec.configs) and spec.columns() == sweep.COLUMNS
    assert spec.varied == ["lr"]


def test_zoo_specs_name_the_model_and_refuse_lenet_knobs() -> None:
    spec = sweep.load_spec({"name": "z", "points": [{}, {"model": "resnet", "batch_size": 128}]})
    assert "model" not in spec.configs[0] and spec.configs[1]["model"] == "resnet"
    assert spec.varied == ["batch_size", "model"]
    cols = spec.columns()
    assert cols[cols.index("test_subset") + 1] == "model" and set(cols) - set(sweep.COLUMNS) == {"model"}
    assert len({r.run_id for r in spec.runs()}) == len(spec.runs())
    with pytest.raises(sweep.SpecError, match="activation"):
        sweep.load_spec({"name": "z", "points": [{"model": "vgg", "activation": "relu"}]})
    with pytest.raises(sweep.SpecError, match="model must be one of"):
        sweep.load_spec({"name": "z", "points": [{"model": "inception"}]})
    assert sweep.CHOICES["model"] == tuple(zoo.MODELS)
    with pytest.raises(ValueError, match="batched engine"):
        sweep.engine_for(spec.configs[1], "batched")
    assert sweep.engine_for({**spec.configs[1], "batch_size": 4}, "auto") == "fit"


def test_a_zoo_sweep_trains_resumes_and_reuses_lenet_rows(tmp_path: Path) -> None:
    quiet = {"num_threads": 1, "progress": False, "log": lambda s: None}
    lenet_only = sweep.load_spec({"name": "l", "base": TINY, "seeds": 1})
    sweep.run_sweep(lenet_only, tmp_path / "lenet.csv", **quiet)
    assert (tmp_path / "lenet.csv").read_text().splitlines()[0] == ",".join(sweep.COLUMNS)
    spec = sweep.load_spec({"name": "z", "base": TINY, "points": [{}, {"model": "resnet"}], "seeds": 1})
    out = tmp_path / "zoo.csv"
    sweep.run_sweep(spec, out, reuse=[tmp_path / "lenet.csv"], **quiet)
    rows = sweep.read_results(out)
    assert [r["model"] for r in rows] == ["lenet", "resnet"]
    assert rows[0]["sweep"] == "l"  # copied from the LeNet-only file, not trained again
    assert rows[1]["sweep"] == "z" and rows[1]["engine"] == "fit" and len(rows[1]["test_acc"]) == 1
    log: list[str] = []
    sweep.run_sweep(spec, out, **{**quiet, "log": log.append})  # resumed: nothing left
    assert any("2 done, 0 to run" in line for line in log) and len(sweep.read_results(out)) == 2


def test_committed_zoo_specs_give_every_network_the_same_budget() -> None:
    specs = {n: sweep.load_spec(REPO / "data/sweeps" / f"{n}.json") for n in ("zoo_fashion", "zoo_mnist", "residual")}
    for name, spec in specs.items():
        assert spec.name == name and len(spec.seeds) >= 3 and spec.engine == "fit"
        budget = {(c["epochs"], c["dataset"], c["train_subset"], c["test_subset"]) for c in spec.configs}
        recipe = {(c["optimizer"], c["lr"], c["batch_size"]) for c in spec.configs}
        assert len(budget) == 1 and len(recipe) == 1, name  # one budget and one recipe per sweep
    zoo_models = {c.get("model", "lenet") for c in specs["zoo_fashion"].configs}
    assert {"lenet", "alexnet", "vgg", "nin", "googlenet", "resnet"} <= zoo_models
    assert [c.get("model", "lenet") for c in specs["zoo_mnist"].configs] == [
        c.get("model", "lenet") for c in specs["zoo_fashion"].configs
    ]
    assert {c["dataset"] for c in specs["zoo_mnist"].configs} == {"mnist"}
    depth = specs["residual"].configs
    assert sorted(c["model"] for c in depth) == sorted(n for n in zoo.MODELS if n[:5] in ("plain", "resid"))


def test_train_command_trains_a_zoo_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--model", "resnet", "--train-subset", "256", "--epochs", "1", "--batch-size", "64", "--lr", "0.05",
            "--device", "cpu", "--threads", "1", "--no-progress", "--out", str(tmp_path / "run")]  # fmt: skip
    assert cli_train.main(args) == 0
    assert (tmp_path / "run" / "metrics.csv").is_file() and (tmp_path / "run" / "best.pt").is_file()
    assert "training resnet on fashion" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_train.main([*args, "--size", "32"])
    assert "takes the 28x28 images" in capsys.readouterr().err


def test_spec_files_are_json_objects_with_descriptions() -> None:
    for name in ("zoo_fashion", "zoo_mnist", "residual"):
        raw = json.loads((REPO / "data/sweeps" / f"{name}.json").read_text())
        assert raw["name"] == name and len(raw["description"]) > 40
