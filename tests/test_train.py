"""lenet_utils.train: d2l.train_ch6's semantics, checkpoints, early stopping, the CLI.

Everything runs on a few hundred Fashion-MNIST images so the file takes seconds.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from pathlib import Path

import matplotlib
import pytest
import torch
from torch import nn

from lenet_utils import data, set_seed, train
from lenet_utils.cli import train as cli_train
from lenet_utils.models import lenet_d2l

matplotlib.use("Agg")
d2l = pytest.importorskip("d2l.torch")


def _loaders(n_train: int = 320, n_test: int = 256, batch_size: int = 64, shuffle: bool = False):
    """Small TensorLoaders cut from the cached split (pixels in [0, 1], like ToTensor).

    train_ch6 needs at least 5 batches per epoch (it redraws every num_batches // 5)."""
    Xtr, ytr = data.load_split("fashion", True)
    Xte, yte = data.load_split("fashion", False)
    prep = lambda X: X.float().div(255).unsqueeze(1)  # (N, 1, 28, 28)
    train_iter = data.TensorLoader(prep(Xtr[:n_train]), ytr[:n_train], batch_size, shuffle=shuffle)
    test_iter = data.TensorLoader(prep(Xte[:n_test]), yte[:n_test], batch_size)
    return train_iter, test_iter


def _run_train_ch6(net: nn.Module, train_iter, test_iter, epochs: int, lr: float) -> tuple[float, float, float]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        d2l.train_ch6(net, train_iter, test_iter, epochs, lr, torch.device("cpu"))
    d2l.plt.close("all")
    m = re.search(r"loss ([\d.]+), train acc ([\d.]+), test acc ([\d.]+)", out.getvalue())
    assert m, out.getvalue()[-300:]
    return float(m.group(1)), float(m.group(2)), float(m.group(3))


def test_our_loaders_plug_into_train_ch6_and_fit_matches_it():
    """train_ch6 takes our TensorLoader unchanged; fit reaches the same printed numbers."""
    train_iter, test_iter = _loaders()
    set_seed(0)
    net_d2l = lenet_d2l()
    loss_d, train_d, test_d = _run_train_ch6(net_d2l, train_iter, test_iter, epochs=2, lr=0.9)
    assert 0 < loss_d < 5 and 0 <= train_d <= 1 and 0 <= test_d <= 1
    # train_ch6's final test accuracy is evaluate_accuracy_gpu's, and ours agrees with it
    assert train.evaluate_accuracy(net_d2l, test_iter) == pytest.approx(d2l.evaluate_accuracy_gpu(net_d2l, test_iter))

    set_seed(0)
    net = lenet_d2l()  # same constructor draws, then fit's Xavier draws continue the same stream
    h = train.fit(net, train_iter, test_iter, epochs=2, lr=0.9, progress=False, channels_last=False, num_threads=1)
    assert h.train_loss[-1] == pytest.approx(loss_d, abs=1.5e-3)
    assert h.train_acc[-1] == pytest.approx(train_d, abs=1.5e-3)
    assert h.test_acc[-1] == pytest.approx(test_d, abs=1.5e-3)
    for p, q in zip(net.parameters(), net_d2l.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


# train_ch6's Animator sets xlim=[1, num_epochs]: with one epoch matplotlib warns and widens it
@pytest.mark.filterwarnings("ignore:Attempting to set identical low and high xlims:UserWarning")
def test_init_xavier_is_d2ls_init():
    """With lr = 0, train_ch6 only initialises: its weights equal init_xavier's from the same seed."""
    train_iter, test_iter = _loaders(n_test=64)
    set_seed(1)
    a = lenet_d2l()
    _run_train_ch6(a, train_iter, test_iter, epochs=1, lr=0.0)
    set_seed(1)
    b = lenet_d2l()
    train.init_xavier(b)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0, msg=name)
    # Xavier bound sqrt(6 / (fan_in + fan_out)) on the 120-84 layer
    w = b[9].weight  # Linear(120, 84)
    assert w.abs().max() <= math.sqrt(6 / (120 + 84))


def test_fit_step_is_w_minus_lr_grad():
    """One fit epoch on one batch = one hand-made SGD step w <- w - lr * grad; metrics = pre-step ones."""
    train_iter, test_iter = _loaders(n_train=64, n_test=64, batch_size=64)
    X, y = next(iter(train_iter))
    train_iter.epoch = 0
    set_seed(2)
    net = lenet_d2l()
    train.init_xavier(net)
    manual = lenet_d2l()
    manual.load_state_dict(net.state_dict())
    lr = 0.5
    y_hat = manual(X)
    loss = nn.CrossEntropyLoss()(y_hat, y)
    loss.backward()
    expected_acc = (y_hat.argmax(1) == y).float().mean().item()
    with torch.no_grad():
        for p in manual.parameters():
            p -= lr * p.grad
    h = train.fit(
        net, train_iter, test_iter, epochs=1, lr=lr, init=None, progress=False, channels_last=False, num_threads=1
    )
    for p, q in zip(net.parameters(), manual.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert h.train_loss == [pytest.approx(loss.item(), rel=1e-5)]
    assert h.train_acc == [pytest.approx(expected_acc)]
    assert h.batch_loss == [pytest.approx(loss.item(), rel=1e-5)]


def test_losses_and_optimizers():
    logits, y = torch.randn(8, 10), torch.randint(0, 10, (8,))
    ce = train.make_loss("cross_entropy")(logits, y)
    torch.testing.assert_close(train.make_loss("one_hot")(logits, y), ce)
    torch.testing.assert_close(ce, nn.functional.nll_loss(logits.log_softmax(1), y))  # the reproduction project's form
    p = [nn.Parameter(torch.zeros(3))]
    opt = train.make_optimizer("momentum", p, 0.1)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9
    assert isinstance(train.make_optimizer("adagrad", p, 0.1), torch.optim.Adagrad)
    with pytest.raises(ValueError, match="unknown optimizer"):
        train.make_optimizer("lbfgs-ish", p, 0.1)
    with pytest.raises(ValueError, match="unknown loss"):
        train.make_loss("hinge")


def test_patience_scheme_of_the_theano_tutorial():
    s = train.PatienceStopping(patience=4)
    # epoch 1: improvement -> patience max(4, 2) = 4; epoch 3: big improvement -> max(4, 6) = 6
    assert [s.step(1, 0.90), s.step(2, 0.90), s.step(3, 0.95)] == [False, False, False]
    assert s.patience == 6 and s.best_epoch == 3
    # a gain below the 0.5 % relative threshold is a new best but does not extend patience
    assert not s.step(4, 0.95 + 0.05 * 0.001) and s.patience == 6 and s.best_epoch == 4
    assert not s.step(5, 0.5)
    assert s.step(6, 0.5)  # patience 6 <= epoch 6: stop


def test_fit_stops_early_and_checkpoint_round_trip(tmp_path: Path):
    train_iter, test_iter = _loaders(n_train=128, n_test=128)
    val_iter = data.TensorLoader(test_iter.X[:64], test_iter.y[:64], 64)
    set_seed(3)
    net = lenet_d2l()
    # lr = 0: nothing improves after epoch 1, so patience 2 stops the run at epoch 2
    h = train.fit(net, train_iter, test_iter, epochs=10, lr=0.0, val_iter=val_iter, patience=2,
                  checkpoint=tmp_path / "best.pt", progress=False, num_threads=1)  # fmt: skip
    assert h.stopped_epoch == 2 and h.epochs == 2 and h.best_epoch == 1
    state = train.load_checkpoint(tmp_path / "best.pt", lenet_d2l())
    assert state["epoch"] == 1 and state["val_acc"] == h.val_acc[0]
    fresh = lenet_d2l()
    train.load_checkpoint(tmp_path / "best.pt", fresh)
    assert train.evaluate_accuracy(fresh, val_iter) == h.val_acc[0]
    assert not list(tmp_path.glob("*.part"))  # written under a temporary name, then renamed
    with pytest.raises(ValueError, match="validation"):
        train.fit(lenet_d2l(), train_iter, test_iter, epochs=1, patience=2, progress=False)
    with pytest.raises(FileNotFoundError, match="train first"):
        train.load_checkpoint(tmp_path / "missing.pt")


def test_resume_from_state_equals_uninterrupted_run(tmp_path: Path):
    def run(epochs: int, state: Path) -> nn.Module:
        train_iter, test_iter = _loaders(n_train=128, n_test=64, shuffle=True)
        set_seed(4)
        net = lenet_d2l()
        train.fit(net, train_iter, test_iter, epochs=epochs, lr=0.9, seed=4, state=state, progress=False, num_threads=1)
        return net

    full = run(2, tmp_path / "a.pt")
    run(1, tmp_path / "b.pt")  # "killed" after one epoch
    resumed = run(2, tmp_path / "b.pt")
    for p, q in zip(full.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_history_csv_round_trip(tmp_path: Path):
    h = train.History([1.0, 0.5], [0.3, 0.6], [0.4, 0.7], [math.nan, math.nan], [1.0, 1.0], [10.0, 20.0])
    h.extra["test_acc_hflip"] = [0.2, 0.3]
    back = train.History.from_csv(h.to_csv(tmp_path / "m.csv"))
    assert back.train_loss == h.train_loss and back.test_acc == h.test_acc
    assert back.extra == {"test_acc_hflip": [0.2, 0.3]} and math.isnan(back.val_acc[0])
    assert "test acc 0.700" in h.summary()


def test_random_hflip_is_a_batch_op():
    X = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 1, 3, 4)
    torch.testing.assert_close(train.RandomHFlip(1.0)(X), X.flip(-1))
    torch.testing.assert_close(train.RandomHFlip(0.0)(X), X)
    flips = train.RandomHFlip(0.5, seed=0)(torch.ones(1000, 1, 1, 2) * torch.tensor([0.0, 1.0]))
    assert 400 < int((flips[..., 0] == 1).sum()) < 600
    loader = data.TensorLoader(X, torch.zeros(2, dtype=torch.long), 2)
    torch.testing.assert_close(train.hflip_loader(loader).X, X.flip(-1))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "lenet7", "--out", "x"], "invalid choice"),
        (["--lr", "-1", "--out", "x"], "positive number"),
        (["--epochs", "0", "--out", "x"], "positive integer"),
        (["--batch-size", "many", "--out", "x"], "positive integer"),
        ([], "--out"),
        (["--patience", "5", "--out", "x"], "--val-size"),
        (["--model", "paper", "--loss", "cross_entropy", "--out", "x"], "train-paper"),
        (["--hflip", "2", "--out", "x"], "probability"),
    ],
)
def test_cli_bad_arguments_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        cli_train.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_trains_and_writes_csv_and_checkpoint(tmp_path: Path, capsys):
    out = tmp_path / "run"
    argv = ["--dataset", "fashion", "--epochs", "1", "--train-subset", "256", "--val-size", "64", "--out", str(out)]
    code = cli_train.main([*argv, "--no-progress", "--threads", "1", "--batch-loss", str(out / "bl.csv")])
    assert code == 0
    h = train.History.from_csv(out / "metrics.csv")
    assert h.epochs == 1 and 0 <= h.test_acc[0] <= 1 and 0 <= h.val_acc[0] <= 1
    assert (out / "best.pt").is_file() and (out / "bl.csv").read_text().startswith("step,epoch,loss\n")
    assert "best checkpoint: epoch 1" in capsys.readouterr().out


def test_bench_parser():
    from lenet_utils.cli import bench as cli_bench

    args = cli_bench.build_parser().parse_args(["--epochs", "2", "--decompose"])
    assert args.epochs == 2 and args.decompose and args.lr == 0.9 and args.batch_size == 256
