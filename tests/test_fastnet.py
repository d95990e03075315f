"""lenet_utils.fastops / fastnet: the opt-in fast trainer computes the plain network's function,
falls back where it does not apply, and is recorded (settings, numerics) so it never mixes with
plain runs. Small batches of real Fashion-MNIST images: the file takes seconds."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from lenet_utils import checkpoint, data, engine, fastnet, set_seed, train
from lenet_utils.fastops import HConv2d, PolyC1Block, SigmoidAvgPool
from lenet_utils.models import lenet_d2l
from lenet_utils.settings import SettingsChangedError

CL = torch.channels_last


def _images(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = data.load_split("fashion", True)
    return X[:n].float().div(255).unsqueeze(1), y[:n]


def _net(dtype: torch.dtype = torch.float32, **kw) -> nn.Sequential:
    set_seed(0)
    net = lenet_d2l(**kw)
    train.init_xavier(net)
    return net.to(dtype)


def _loss_and_grads(model: nn.Module, params: list[nn.Parameter], X: torch.Tensor, y: torch.Tensor):
    loss = nn.functional.cross_entropy(model(X), y)
    return loss.detach(), torch.autograd.grad(loss, params)


_KINDS = pytest.mark.parametrize(
    "kw", [{}, {"activation": "relu"}, {"pool": "max"}, {"activation": "tanh", "c1_kernel": 3}],
    ids=["d2l", "relu", "max", "tanh-k3"],
)  # fmt: skip


def _view_and_params(net: nn.Sequential) -> tuple[nn.Module, list[nn.Parameter]]:
    view = fastnet.fast_view(net)
    assert view is not None and isinstance(view[0], PolyC1Block)
    params = list(net.parameters())
    assert [id(p) for p in view.parameters()] == [id(p) for p in params]  # shared, not copied
    return view, params


@_KINDS
def test_one_step_in_float64_matches_the_plain_network(kw: dict) -> None:
    """In double precision the two sums in different orders agree to 1e-12."""
    X, y = _images()
    net = _net(torch.float64, **kw)
    view, params = _view_and_params(net)
    loss_ref, g_ref = _loss_and_grads(net, params, X.double(), y)
    loss, g = _loss_and_grads(view, params, X.double().contiguous(memory_format=CL), y)
    assert torch.allclose(loss, loss_ref, rtol=1e-12, atol=0)
    for a, b in zip(g, g_ref, strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1e-12 * b.abs().max()


@_KINDS
def test_one_step_in_float32_is_as_accurate_as_the_plain_network(kw: dict) -> None:
    """In single precision both paths round, each in its own order, and how far apart they land
    depends on the CPU's kernels. What does not: measured against the same step in double
    precision, the fused path's error is at most twice the plain path's, plus a few units of
    float32 rounding (8 eps of the largest entry), for the loss and every gradient."""
    X, y = _images()
    net = _net(torch.float32, **kw)
    exact = copy.deepcopy(net).double()
    view, params = _view_and_params(net)
    loss_ref, g_ref = _loss_and_grads(net, params, X, y)
    loss, g = _loss_and_grads(view, params, X.contiguous(memory_format=CL), y)
    loss64, g64 = _loss_and_grads(exact, list(exact.parameters()), X.double(), y)
    eps = torch.finfo(torch.float32).eps

    def err(t: torch.Tensor, truth: torch.Tensor) -> float:
        return float((t.double() - truth).abs().max())

    assert err(loss, loss64) <= 2 * err(loss_ref, loss64) + 8 * eps * float(loss64.abs())
    for a, b, truth in zip(g, g_ref, g64, strict=True):
        assert a.shape == b.shape == truth.shape
        assert err(a, truth) <= 2 * err(b, truth) + 8 * eps * float(truth.abs().max())


def test_d2l_lenet_gets_every_fused_operator() -> None:
    view, used = fastnet.train_module(_net(), _images()[0])
    assert used
    kinds = [type(m) for m in view]
    assert kinds[:3] == [PolyC1Block, HConv2d, SigmoidAvgPool]
    assert nn.Sigmoid in kinds  # the sigmoids between the linear layers stay as they are


class _Wrapped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = lenet_d2l()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_falls_back_to_the_plain_network_where_it_does_not_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    X = _images()[0]
    for net in (_Wrapped(), nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), _net(torch.float64)):
        model, used = fastnet.train_module(net, X.to(next(net.parameters()).dtype))
        assert model is net and not used
    monkeypatch.setattr(fastnet, "agrees", lambda *a, **k: False)  # a view that computes something else
    net = _net()
    assert fastnet.train_module(net, X) == (net, False)


def test_fast_view_changes_nothing_it_does_not_understand() -> None:
    net = _net(activation="scaled_tanh")  # no fused block for this activation: only the convolutions
    view = fastnet.fast_view(net)
    assert view is not None
    assert [type(m) for m in view if not isinstance(m, HConv2d)] == [type(m) for m in net if type(m) is not nn.Conv2d]


def _fit(tmp: Path, fast: bool, epochs: int = 1) -> train.History:
    X, y = _images(256)
    loader = data.TensorLoader(X, y, 64)
    return train.fit(_net(), loader, loader, epochs=epochs, progress=False, num_threads=1, init=None, fast=fast,
                     state=tmp / "state.pt", checkpoint=tmp / "best.pt")  # fmt: skip


def test_fit_fast_is_an_opt_in_recorded_in_settings_and_numerics(tmp_path: Path) -> None:
    plain, fast = tmp_path / "plain", tmp_path / "fast"
    plain.mkdir(), fast.mkdir()
    h_plain, h_fast = _fit(plain, False), _fit(fast, True)
    assert not h_plain.fast and h_fast.fast
    for folder, numerics, flag in ((plain, engine.NUMERICS, None), (fast, fastnet.FAST_NUMERICS, True)):
        for name, kind in (("state.pt", "fit-state"), ("best.pt", "fit")):
            ck = checkpoint.load(folder / name, kind=kind)
            assert ck["versions"]["numerics"] == str(numerics)
            assert ck["config"].get("fast") is flag
    assert fastnet.FAST_NUMERICS != engine.NUMERICS
    # the same run, one epoch apart: the two learn the same thing to rounding
    assert h_fast.train_loss[0] == pytest.approx(h_plain.train_loss[0], rel=1e-3)
    with pytest.raises(SettingsChangedError, match="fast"):  # never resumed the other way
        _fit(fast, False, epochs=2)
    with pytest.raises(SettingsChangedError, match="fast"):
        _fit(plain, True, epochs=2)


def test_bench_runs_the_fast_trainer_on_request_and_prints_its_ratio() -> None:
    from lenet_utils import bench
    from lenet_utils.cli import bench as cli_bench

    assert cli_bench.build_parser().parse_args(["--fast"]).fast
    assert not cli_bench.build_parser().parse_args([]).fast
    row = {"wall_s": 60.0, "wall_rate": 1000.0, "d2l_rate": 1100.0, "test_acc": 0.8}
    results = {
        "d2l.train_ch6": {**row, "wall_s": 240.0, "wall_rate": 250.0, "d2l_rate": 275.0, "test_acc": 0.75},
        "lenet_utils.train.fit": row,
        bench.FAST_ROW: {**row, "wall_s": 40.0, "wall_rate": 1500.0, "d2l_rate": 1650.0},
    }
    lines: list[str] = []
    bench._speedups(results, lines.append)
    text = "\n".join(lines)
    assert "fit, wall clock: 4.0x" in text and "fit --fast, wall clock: 6.0x" in text
    assert "ours 0.800" in text and "ours, fast 0.800" in text and "d2l 0.750" in text
