"""LeNet5Paper as published, and the committed result of the 1998 recipe (lenet_utils.paper)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lenet_utils import layers, paper
from lenet_utils.engine import run
from lenet_utils.models import LeNet5Paper, count_parameters

REPO = Path(__file__).resolve().parents[1]
# the recipe of chapter 5 (seed 0): mu = 1, and with the paper's 600,000 distorted patterns per pass
CHECKPOINT = REPO / "data" / "paper" / "plain_mu1" / "checkpoint.pt"
DISTORTED = REPO / "data" / "paper" / "distortions_x10" / "checkpoint.pt"

# Table I of the paper as printed: rows are the S2 maps 0-5, columns the C3 maps 0-15.
TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def test_parameter_counts_per_layer() -> None:
    model = LeNet5Paper()
    per_layer = {
        name: count_parameters(getattr(model, name)) for name in ("C1", "S2", "C3", "S4", "C5", "F6", "output")
    }
    assert per_layer == {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164, "output": 0}
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 60_000


def test_c3_has_no_masked_dense_kernel() -> None:
    c3 = LeNet5Paper().C3
    shapes = [tuple(p.shape) for p in c3.parameters()]
    assert shapes == [(60, 5, 5), (16,)]  # 60 connected kernels, no (16, 6, 5, 5) tensor


def test_c3_mask_equals_table_i() -> None:
    rows = [r for r in TABLE_I.split() if r]
    printed = torch.tensor([[ch == "X" for ch in r] for r in rows])  # (6 S2 maps, 16 C3 maps)
    assert printed.sum() == 60
    assert torch.equal(layers.c3_mask().t(), printed)
    assert torch.equal(layers.c3_mask(LeNet5Paper().C3.table).t(), printed)


def test_c3_forward_uses_only_connected_maps() -> None:
    c3 = LeNet5Paper().C3
    x = torch.zeros(1, 6, 14, 14)
    x[0, 0] = torch.randn(14, 14)  # only S2 map 0 active
    y = c3(x) - c3(torch.zeros_like(x))  # (1, 16, 10, 10): the part that depends on map 0
    moved = y.abs().flatten(2).amax(2)[0] > 0
    assert moved.tolist() == [0 in t for t in layers.C3_TABLE]


def _bitmaps_from(path: Path) -> torch.Tensor:
    rows: dict[int, list[str]] = {}
    digit = None
    for line in path.read_text().splitlines():
        if line.startswith("digit "):
            digit = int(line.split()[1])
            rows[digit] = []
        elif digit is not None and line.strip() and set(line.strip()) <= {"#", "."}:
            rows[digit].append(line.strip())
    return torch.tensor([[1.0 if c == "#" else -1.0 for c in "".join(rows[d])] for d in range(10)])


def test_rbf_prototypes_are_the_reference_bitmaps_and_fixed() -> None:
    model = LeNet5Paper()
    packaged = _bitmaps_from(REPO / "lenet_utils" / "resources" / "lenet5_rbf_bitmaps.txt")
    assert torch.equal(model.output.prototypes, packaged)
    shared = REPO.parent / "shared" / "reference" / "lenet5_rbf_bitmaps.txt"
    if shared.is_file():  # the reference copy the bitmaps were read from, when present
        assert torch.equal(model.output.prototypes, _bitmaps_from(shared))
    assert "output.prototypes" in model.state_dict()
    assert all(p is not model.output.prototypes for p in model.parameters())
    assert not model.output.prototypes.requires_grad
    # digit 1 of Fig. 3: the top row is ...##.. (units 3 and 4 are ink)
    assert model.output.prototypes[1, :7].tolist() == [-1, -1, -1, 1, 1, -1, -1]


def test_prediction_is_smallest_penalty() -> None:
    model = LeNet5Paper()
    x = torch.randn(5, 1, 32, 32)
    assert torch.equal(model.predict(x), model(x).argmin(1))


def test_eval_batches_give_the_outputs_of_whole_blocks() -> None:
    """The evaluation's batches cover every digit once, in order; a full block is cut into
    smaller batches and a partial last block is kept whole; the outputs are bit for bit those
    of whole blocks (and ScaledTanh's in-place evaluation path gives the autograd path's bits)."""
    torch.manual_seed(0)
    X, y = torch.rand(2300, 1, 32, 32) * 1.275 - 0.1, torch.randint(0, 10, (2300,))
    batches = list(paper.EvalBatches(X, y, block=1000, batch=250))
    assert [len(xb) for xb, _ in batches] == [250] * 8 + [300]
    assert torch.equal(torch.cat([yb for _, yb in batches]), y)
    model = LeNet5Paper(init="sqrt").eval()
    with torch.inference_mode():
        ours = torch.cat([model(xb) for xb, _ in batches])
    blocks = torch.cat([model(X[i : i + 1000]) for i in range(0, len(X), 1000)])  # autograd on
    assert torch.equal(ours, blocks.detach())
    assert paper.evaluate(model, X, y, batch_size=1000)[1].tolist() == blocks.argmin(1).tolist()
    with pytest.raises(ValueError, match="multiple"):
        paper.EvalBatches(X, y, block=1000, batch=300)


def test_distort_is_seeded_and_identity_when_off() -> None:
    x = torch.rand(4, 1, 32, 32) * 1.275 - 0.1
    same = paper.distort(x, torch.Generator().manual_seed(0), prob=0.0)
    assert torch.allclose(same, x, atol=1e-5)
    a = paper.distort(x, torch.Generator().manual_seed(1), prob=1.0)
    b = paper.distort(x, torch.Generator().manual_seed(1), prob=1.0)
    assert torch.equal(a, b) and not torch.allclose(a, x, atol=1e-3)
    # background stays background: a blank image is unchanged by any distortion
    blank = torch.full((3, 1, 32, 32), -0.1)
    assert torch.allclose(paper.distort(blank, torch.Generator().manual_seed(2), prob=1.0), blank, atol=1e-6)


def test_distort_translation_moves_the_ink() -> None:
    x = torch.full((1, 1, 32, 32), -0.1)
    x[0, 0, 10:20, 10:20] = 1.175
    y = paper.distort(x, torch.Generator().manual_seed(3), prob=1.0, scale=0, squeeze=0, shear=0, shift=2)
    ink = (y[0, 0] + 0.1).clamp_min(0)
    cols = torch.arange(32.0)
    cx = (ink.sum(0) * cols).sum() / ink.sum()
    assert 12.5 <= cx <= 16.5 and abs(cx - 14.5) > 0.01  # moved, by at most 2 pixels


@pytest.mark.slow
def test_short_training_learns(tmp_path: Path) -> None:
    """Two SDLM passes over 2,000 images: well below chance, and a resume continues the log."""
    Xtr, ytr, Xte, yte = paper.mnist_tensors("paper")
    data = (Xtr[:2000], ytr[:2000], Xte[:1000], yte[:1000])
    cfg = paper.PaperConfig(init="sqrt", mu=0.2, passes=1, batch_size=10, seed=0, threads=1)
    _, rows = paper.train(cfg, tmp_path, data=data)
    assert len(rows) == 1 and rows[0]["test_error"] < 0.35, rows
    cfg.passes = 2
    _, rows = paper.train(cfg, tmp_path, data=data)  # resumes after pass 1
    assert [r["pass"] for r in rows] == [1, 2]
    assert [r["pass"] for r in paper.load_log(tmp_path / "log.csv")] == [1, 2]
    assert rows[1]["eps"] == 5e-4 and rows[1]["train_error"] < 0.2, rows


def test_resume_refuses_other_settings(tmp_path: Path) -> None:
    Xtr, ytr, Xte, yte = paper.mnist_tensors("paper")
    data = (Xtr[:200], ytr[:200], Xte[:100], yte[:100])
    paper.train(paper.PaperConfig(passes=1, threads=1), tmp_path, data=data)
    with pytest.raises(ValueError, match="other settings"):
        paper.train(paper.PaperConfig(passes=2, j=3.0, threads=1), tmp_path, data=data)


def test_hold_out_is_fixed_disjoint_and_complete() -> None:
    X, y = torch.arange(100.0).view(100, 1), torch.arange(100) % 10
    a = paper.hold_out(X, y, 20)
    b = paper.hold_out(X, y, 20)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))  # the same draw every run
    Xr, yr, Xv, yv = a
    assert torch.equal(yr, Xr.view(-1).long() % 10)
    assert len(Xr) == 80 and len(Xv) == 20
    seen = torch.cat([Xr, Xv]).view(-1).sort().values
    assert torch.equal(seen, X.view(-1))  # disjoint, nothing lost
    assert torch.equal(yv, Xv.view(-1).long() % 10)  # labels stay with their images
    assert not torch.equal(Xv.view(-1), X[-20:].view(-1))  # random, not the last 20
    for bad in (0, 100):
        with pytest.raises(ValueError, match="validation size"):
            paper.hold_out(X, y, bad)


def test_validation_run_reports_the_held_out_images(tmp_path: Path) -> None:
    Xtr, ytr, Xte, yte = paper.mnist_tensors("paper")
    data = (Xtr[:300], ytr[:300], Xte[:50], yte[:50])
    cfg = paper.PaperConfig(init="sqrt", mu=0.2, passes=1, validation=100, threads=1)
    model, rows = paper.train(cfg, tmp_path, data=data)
    Xr, yr, Xv, yv = paper.hold_out(Xtr[:300], ytr[:300], 100)
    # the held-out 100, not the test set; trained and measured on the other 200
    assert rows[0]["test_error"] == pytest.approx(paper.evaluate(model, Xv, yv)[0], abs=1e-12)
    assert rows[0]["train_error"] == pytest.approx(paper.evaluate(model, Xr, yr)[0], abs=1e-12)


def test_copies_need_distortions_and_multiply_the_updates(tmp_path: Path) -> None:
    Xtr, ytr, Xte, yte = paper.mnist_tensors("paper")
    data = (Xtr[:100], ytr[:100], Xte[:50], yte[:50])
    with pytest.raises(ValueError, match="copies"):
        paper.train(paper.PaperConfig(passes=1, copies=2, threads=1), data=data)
    steps = []
    for copies in (1, 3):
        cfg = paper.PaperConfig(init="sqrt", mu=0.2, passes=1, distortions=True, copies=copies, threads=1)
        model = paper._build("paper", "sqrt")
        calls: list[int] = []
        task, schedule = paper.make_task(cfg, model, *data[:2], {}, torch.device("cpu"))
        task.optimizer.register_step_post_hook(lambda *_, calls=calls: calls.append(1))
        run(task, 1, callbacks=[schedule])
        steps.append(len(calls))
    assert steps == [10, 30]  # batches of 10: every image once per pass, or three times


def _finished(checkpoint: Path, passes: int = 20) -> bool:
    log = checkpoint.parent / "log.csv"
    return checkpoint.is_file() and log.is_file() and len(paper.load_log(log)) >= passes


@pytest.mark.skipif(
    not _finished(CHECKPOINT),
    reason=f"{CHECKPOINT.parent} has not finished 20 passes: continue it with `python -m lenet_utils "
    "train-paper --passes 20 --threads 1 --init sqrt --mu 1.0 --out data/paper/plain_mu1`",
)
def test_committed_checkpoint_reaches_one_percent() -> None:
    model = paper.load_checkpoint(CHECKPOINT)
    assert count_parameters(model) == 60_000
    _, _, Xte, yte = paper.mnist_tensors("paper")
    err, _ = paper.evaluate(model, Xte, yte)
    log = paper.load_log(CHECKPOINT.parent / "log.csv")
    assert abs(log[-1]["test_error"] - err) < 1e-6  # the log describes this checkpoint
    assert err <= 0.010, f"test error {100 * err:.2f}% > 1.0% (the paper: 0.95%)"


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"{CHECKPOINT} not written yet")
def test_committed_checkpoint_matches_its_log() -> None:
    """Whatever pass the run has reached, the checkpoint reproduces its logged test error (seconds)."""
    model = paper.load_checkpoint(CHECKPOINT)
    assert count_parameters(model) == 60_000
    _, _, Xte, yte = paper.mnist_tensors("paper")
    err, _ = paper.evaluate(model, Xte, yte)
    log = paper.checkpoint_log(CHECKPOINT)  # its own copy: the CSV may be a pass ahead
    assert abs(log[-1]["test_error"] - err) < 1e-6


@pytest.mark.skipif(
    not _finished(DISTORTED),
    reason=f"{DISTORTED.parent} has not finished 20 passes: continue it with `python -m lenet_utils train-paper "
    "--passes 20 --threads 1 --init sqrt --mu 1.0 --distortions --copies 10 --out data/paper/distortions_x10`",
)
def test_committed_distortion_checkpoint_reaches_target() -> None:
    model = paper.load_checkpoint(DISTORTED)
    _, _, Xte, yte = paper.mnist_tensors("paper")
    err, _ = paper.evaluate(model, Xte, yte)
    log = paper.load_log(DISTORTED.parent / "log.csv")
    assert abs(log[-1]["test_error"] - err) < 1e-6
    assert err <= 0.0085, f"test error {100 * err:.2f}% > 0.85% (the paper: 0.8%)"


# ------------------------------------------------------------------------------------------
# The distortion protocols (fresh every pass, or the paper's fixed set) and their ranges


def _pass_patterns(cfg: paper.PaperConfig, X: torch.Tensor, y: torch.Tensor, epoch: int) -> torch.Tensor:
    """Every pattern of one pass, indexed by its number j in ``[0, N * copies)`` (not by its place)."""
    from types import SimpleNamespace

    schedule = paper.PassSchedule(cfg, X, y)
    task = SimpleNamespace(state={}, optimizer=None, device=torch.device("cpu"))
    schedule.epoch_start(task, epoch)  # type: ignore[arg-type]
    xs, ys = zip(*schedule.batches(task), strict=True)  # type: ignore[arg-type]
    order = task.state["order"]
    assert torch.equal(torch.cat(ys), y[order % len(X)])
    out = torch.empty(len(order), *X.shape[1:])
    out[order] = torch.cat(xs)
    return out  # (N * copies, 1, 32, 32)


def test_fixed_protocol_reuses_each_copy_and_keeps_the_originals() -> None:
    Xtr, ytr, _, _ = paper.mnist_tensors("paper")
    X, y, n = Xtr[:40], ytr[:40], 40
    fixed = paper.PaperConfig(distortions=True, copies=3, distortion_protocol="fixed", seed=5)
    a, b = _pass_patterns(fixed, X, y, 1), _pass_patterns(fixed, X, y, 2)
    assert torch.equal(a, b)  # copy k of image i is the same pattern in both passes
    assert torch.equal(a[:n], X)  # copy 0: the originals, undistorted, once per pass
    moved = (a[n:] - X.repeat(2, 1, 1, 1)).abs().flatten(1).amax(1)
    assert (moved > 0.1).all()  # copies 1 and 2: every one distorted
    assert not torch.equal(a[n : 2 * n], a[2 * n :])  # and the two copies differ
    other = paper.PaperConfig(distortions=True, copies=3, distortion_protocol="fixed", seed=6)
    assert not torch.equal(_pass_patterns(other, X, y, 1)[n:], a[n:])  # the set depends on the seed
    # the parameters of (i, k) do not depend on how many images there are
    assert torch.equal(paper.fixed_draws(5, 10, 3), paper.fixed_draws(5, 40, 3)[:10])
    fresh = paper.PaperConfig(distortions=True, copies=3, seed=5)
    c, d = _pass_patterns(fresh, X, y, 1), _pass_patterns(fresh, X, y, 2)
    differ = (c - d).abs().flatten(1).amax(1) > 1e-6
    assert differ.float().mean() > 0.9  # fresh: new draws every pass (10% kept as they are, twice: 1%)


def test_distort_range_scales_every_range() -> None:
    cfg = paper.PaperConfig(distortions=True, distort_range=2.0)
    schedule = paper.PassSchedule(cfg, torch.zeros(1, 1, 32, 32), torch.zeros(1, dtype=torch.long))
    assert schedule.ranges == {"shift": 4.0, "scale": 0.2, "squeeze": 0.2, "shear": 0.4}
    x = torch.full((1, 1, 32, 32), -0.1)
    x[0, 0, 14:18, 14:18] = 1.175
    u = torch.tensor([[0.5, 0.5, 0.5, 1.0, 0.5]])  # scale, squeeze, shear at 1, 1, 0; x shift at its maximum
    cols = torch.arange(32.0)

    def centre(img: torch.Tensor) -> float:
        ink = (img[0, 0] + 0.1).sum(0)  # (32,) ink per column
        return float((ink * cols).sum() / ink.sum())

    for rng in (1.0, 2.0):
        ranges = {k: v * rng for k, v in paper.DISTORT_RANGES.items()}
        moved = paper.affine_distort(x, u, torch.tensor([True]), **ranges)
        assert centre(moved) - centre(x) == pytest.approx(2.0 * rng, abs=0.05)
    with pytest.raises(ValueError, match="distort_range"):
        label = torch.zeros(1, dtype=torch.long)
        paper.train(paper.PaperConfig(distortions=True, distort_range=0.0, passes=1), data=(x, label, x, label))


@pytest.mark.parametrize(
    ("first", "then", "changed"),
    [({"distortion_protocol": "fixed"}, {}, "distortion_protocol"), ({}, {"distort_range": 2.0}, "distort_range")],
)
def test_resume_refuses_another_protocol_or_range(tmp_path: Path, first: dict, then: dict, changed: str) -> None:
    from lenet_utils.settings import SettingsChangedError

    Xtr, ytr, Xte, yte = paper.mnist_tensors("paper")
    data = (Xtr[:60], ytr[:60], Xte[:20], yte[:20])
    base = {"init": "sqrt", "mu": 1.0, "distortions": True, "copies": 2, "threads": 1}
    paper.train(paper.PaperConfig(passes=1, **base, **first), tmp_path, data=data)
    with pytest.raises(SettingsChangedError, match=changed):
        paper.train(paper.PaperConfig(passes=2, **base, **then), tmp_path, data=data)
    with pytest.raises(ValueError, match="fixed protocol"):
        paper.train(paper.PaperConfig(passes=1, distortion_protocol="fixed", copies=1, distortions=True), data=data)
