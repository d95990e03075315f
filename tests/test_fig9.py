"""The paper's benchmark (Fig. 9): deslanting, LeNet-1/LeNet-4, the classical classifiers, the command.

Fast: small subsets of MNIST (the data cache or $LENET_DATA_MIRROR), seconds per test.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from lenet_utils import deslant, models, paper, summary
from lenet_utils.cli import main as cli_main
from lenet_utils.data import load_split
from lenet_utils.fig9 import ROWS, append_result, get_row, run_row
from lenet_utils.fig9.base import flat_inputs
from lenet_utils.fig9.knn import fit_knn, knn_vote, nearest
from lenet_utils.fig9.rows import COLUMNS, folder_recipe, read_results, run_tag
from lenet_utils.fig9.tangent import tangent_distance, tangent_vectors
from lenet_utils.optim import gauss_newton_diagonal

# ------------------------------------------------------------------------------------------
# Deslanting


def _upright_digit() -> torch.Tensor:
    """A "T" with a thick stem: symmetric about its vertical axis, so mu11 = 0. (28, 28) in [0, 1]."""
    img = torch.zeros(28, 28)
    img[5:8, 8:20] = 1.0  # the bar
    img[5:23, 12:16] = 1.0  # the stem
    img[20:23, 10:18] = 0.5  # a foot
    return img


def _shear(img: torch.Tensor, k: float) -> torch.Tensor:
    """Shear an (H, W) image: output(x, y) = input(x - k (y - cy), y), cy its ink's centre row."""
    H, W = img.shape
    cy = float((img.sum(1) * torch.arange(H)).sum() / img.sum())
    ys = torch.arange(H, dtype=torch.float32).view(H, 1).expand(H, W)
    xs = torch.arange(W, dtype=torch.float32).view(1, W).expand(H, W)
    src_x = xs - k * (ys - cy)
    grid = torch.stack([(2 * src_x + 1) / W - 1, (2 * ys + 1) / H - 1], -1).unsqueeze(0)
    return F.grid_sample(img.view(1, 1, H, W), grid, mode="bilinear", align_corners=False)[0, 0]


def test_slant_sign_and_value_of_a_sheared_digit() -> None:
    up = _upright_digit()
    assert abs(float(deslant.slant(up.unsqueeze(0))[0])) < 1e-9
    s = deslant.slant(_shear(up, 0.3).unsqueeze(0))[0]
    assert 0.25 < float(s) < 0.35, s  # leaning right going down: positive, close to the shear


def test_deslant_unshears_a_sheared_digit() -> None:
    up = _upright_digit()
    for k in (-0.4, 0.3):
        sheared = _shear(up, k)
        back = deslant.deslant(sheared.unsqueeze(0))[0]
        assert abs(float(deslant.slant(back.unsqueeze(0))[0])) < 0.02
        # much closer to the upright digit than the sheared one was (bilinear blur remains)
        assert (back - up).abs().sum() < 0.35 * (sheared - up).abs().sum()


def test_deslant_leaves_an_upright_digit_and_a_blank_image_alone() -> None:
    up = _upright_digit()
    assert torch.allclose(deslant.deslant(up.unsqueeze(0))[0], up, atol=1e-6)
    blank = torch.zeros(2, 1, 28, 28)
    out = deslant.deslant(blank)
    assert out.shape == blank.shape and torch.equal(out, blank)
    mo = deslant.moments(blank)
    assert torch.all(mo["m"] == 0) and torch.all(mo["mu11"] == 0)
    # a background other than 0 (the paper's scale) is kept
    paper_blank = torch.full((1, 1, 32, 32), -0.1)
    assert torch.allclose(deslant.deslant(paper_blank, background=-0.1), paper_blank)


def test_deslant_straightens_real_digits() -> None:
    X, _ = load_split("mnist", False)
    X = X[:200]
    before = deslant.slant(X).abs()
    after = deslant.slant(deslant.deslant(X)).abs()
    assert before.mean() > 0.1  # MNIST digits do lean
    assert after.mean() < 0.15 * before.mean(), (before.mean(), after.mean())
    out = deslant.deslant(X)
    assert out.shape == X.shape and out.dtype == torch.float32
    ink_in, ink_out = X.double().sum((1, 2)), out.double().sum((1, 2))
    assert torch.allclose(ink_in, ink_out, rtol=0.03)  # a shear keeps the ink (to the border's loss)


def test_deslant_refuses_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        deslant.deslant(torch.zeros(28, 28))


# ------------------------------------------------------------------------------------------
# LeNet-1, LeNet-4, the fully connected nets


@pytest.mark.parametrize(
    ("name", "side", "params", "connections", "paper_params", "paper_connections"),
    [
        ("lenet1", 28, 2_578, 98_542, 2_600, 100_000),
        ("lenet4", 32, 50_698, 262_406, None, 260_000),  # the paper's 17,000 cannot hold: see lenet4's doc
    ],
)
def test_other_lenets_match_the_paper(
    name: str, side: int, params: int, connections: int, paper_params: int | None, paper_connections: int
) -> None:
    net = models.PAPER_NETS[name][0](init="sqrt")
    s = summary.summarize(net, (1, 1, side, side))
    assert models.count_parameters(net) == s.params == params
    assert s.connections == connections
    assert abs(connections - paper_connections) / paper_connections < 0.02  # the paper's "about"
    if paper_params is not None:
        assert abs(params - paper_params) / paper_params < 0.02
    assert net(torch.zeros(3, 1, side, side)).shape == (3, 10)



def test_lenet4_sparse_has_the_papers_parameter_count() -> None:
    net = models.lenet4_sparse(init="sqrt")
    s = summary.summarize(net, (1, 1, 32, 32))
    assert models.count_parameters(net) == s.params == 104 + 16 + 1216 + 32 + 120 * (5 * 25 + 1) + 1210 == 17_698
    assert abs(s.params - 17_000) / 17_000 < 0.05  # the paper's "about 17,000"
    assert s.connections == 229_406  # the paper's "about 260,000" is lenet4's reading
    x = torch.zeros(2, 1, 32, 32)
    shapes = []
    for m in net:
        x = m(x)
        shapes.append(tuple(x.shape[1:]))
    assert (16, 5, 5) in shapes and (120, 1, 1) in shapes and (120,) in shapes and shapes[-1] == (10,)
    assert net(torch.zeros(3, 1, 32, 32)).shape == (3, 10)
    assert models.STUDY_NETS["lenet4-sparse"] == (models.lenet4_sparse, models.PAPER_NETS["lenet4"][1])
    assert "lenet4-sparse" not in models.PAPER_NETS  # not a row of Fig. 9, not a train-paper choice
    assert models.count_parameters(models.lenet4()) == 50_698  # the default reading unchanged


def test_lenet4_f5_table_is_valid_and_balanced() -> None:
    table = models.LENET4_F5_TABLE
    assert len(table) == 120 and all(len(t) == len(set(t)) == 5 for t in table)
    assert all(0 <= i < 16 for t in table for i in t) and all(list(t) == sorted(t) for t in table)
    assert len(set(table)) == 120  # no two units see the same maps
    uses = [sum(i in t for t in table) for i in range(16)]
    assert set(uses) == {37, 38} and sum(uses) == 600


def test_lenet_shapes_layer_by_layer() -> None:
    x = torch.zeros(2, 1, 28, 28)
    shapes = []
    for m in models.lenet1():
        x = m(x)
        shapes.append(tuple(x.shape[1:]))
    assert (4, 24, 24) in shapes and (4, 12, 12) in shapes and (12, 8, 8) in shapes and (12, 4, 4) in shapes
    x = torch.zeros(2, 1, 32, 32)
    shapes = []
    for m in models.lenet4():
        x = m(x)
        shapes.append(tuple(x.shape[1:]))
    assert (4, 28, 28) in shapes and (8, 14, 14) in shapes and (16, 10, 10) in shapes and (120,) in shapes
    assert all(len(t) == 3 for t in models.LENET4_TABLE) and len(models.LENET4_TABLE) == 16
    assert sum(map(len, models.LENET1_TABLE)) == 20 and len(models.LENET1_TABLE) == 12


def test_paired_subsampling_gives_each_copy_its_own_coefficient() -> None:
    s = models.PairedSubsampling(4)
    assert models.count_parameters(s) == 8
    with torch.no_grad():
        s.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    x = torch.ones(1, 2, 4, 4)
    x[:, 1] = 2.0
    out = s(x)
    assert out.shape == (1, 4, 2, 2)
    assert out[0, :, 0, 0].tolist() == [4.0, 8.0, 24.0, 32.0]  # window sum (4 or 8) x coefficient
    with pytest.raises(ValueError, match="expects"):
        s(torch.ones(1, 4, 4, 4))


@pytest.mark.parametrize("name", ["lenet1", "lenet4", "fc-300-100"])
def test_curvature_estimate_covers_every_parameter(name: str) -> None:
    net = models.PAPER_NETS[name][0](init="sqrt")
    side = 32 if name == "lenet4" else 28
    h = gauss_newton_diagonal(net, torch.randn(8, 1, side, side))
    params = [p for p in net.parameters() if p.requires_grad]
    assert len(h) == len(params) and all(h[p].shape == p.shape and (h[p] >= 0).all() for p in params)


def test_paper_inputs_kinds() -> None:
    X, _ = load_split("mnist", False)
    X = X[:4]
    assert paper.paper_inputs(X, "pad32").shape == (4, 1, 32, 32)
    blank = torch.tensor(-0.1)
    for kind in ("16in28", "crop16in28"):
        small = paper.paper_inputs(X, kind)
        assert small.shape == (4, 1, 28, 28)
        assert torch.allclose(small[:, :, :6], blank) and torch.allclose(small[:, :, :, -6:], blank)
        assert small.max() > 0.5  # the digit is in the middle

    def ink_rows(img: torch.Tensor) -> int:  # rows holding ink
        return int((img[0] > 0).any(1).sum())

    # the crop keeps the digit at 16/20 of MNIST's size-normalised box; the whole frame shrinks it to 16/28
    frame, crop = paper.paper_inputs(X, "16in28"), paper.paper_inputs(X, "crop16in28")
    for i in range(4):
        assert ink_rows(crop[i]) > ink_rows(frame[i]), i
        assert ink_rows(crop[i]) <= 16
    d20 = paper.paper_inputs(X, "deslant20")
    assert d20.shape == (4, 1, 20, 20) and d20.min() >= -0.1 - 1e-5
    with pytest.raises(ValueError, match="input kind"):
        paper.paper_inputs(X, "12x12")


def test_lenet1_learns_with_the_1998_recipe(tmp_path: Path) -> None:
    """Two SDLM passes over 2,000 digits through the recipe's path: well below chance."""
    Xtr, ytr, Xte, yte = paper.mnist_tensors("lenet1")
    data = (Xtr[:2000], ytr[:2000], Xte[:500], yte[:500])
    cfg = paper.PaperConfig(model="lenet1", init="sqrt", mu=1.0, passes=2, threads=1)
    _, rows = paper.train(cfg, tmp_path, data=data)
    assert len(rows) == 2 and rows[-1]["test_error"] < 0.4, rows
    again = paper.load_checkpoint(tmp_path / "checkpoint.pt")
    assert paper.evaluate(again, data[2], data[3])[0] == pytest.approx(rows[-1]["test_error"], abs=1e-12)


# ------------------------------------------------------------------------------------------
# The classical classifiers


def test_nearest_and_vote() -> None:
    P = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    d, ix = nearest(torch.tensor([[0.1, 0.0], [4.0, 4.0]]), P, 2, block=1)
    assert ix.tolist() == [[0, 1], [3, 2]] and torch.allclose(d[0], torch.tensor([0.01, 0.81]))
    assert knn_vote(torch.tensor([[2, 1, 1], [3, 4, 5], [7, 7, 0]])).tolist() == [1, 3, 7]
    with pytest.raises(ValueError):
        nearest(torch.zeros(1, 2), P, 5)


def test_knn_matches_brute_force() -> None:
    X, y = load_split("mnist", True)
    Xtr, ytr = flat_inputs(X[:1000], "raw"), y[:1000]
    Xq = flat_inputs(X[1000:1100], "raw")
    pred = fit_knn(Xtr, ytr, k=3).predict(Xq)
    d = torch.cdist(Xq.double(), Xtr.double())
    ix = d.topk(3, largest=False).indices
    assert torch.equal(pred, knn_vote(ytr[ix]))


def test_tangent_distance_ignores_a_small_translation() -> None:
    X, _ = load_split("mnist", False)
    x = flat_inputs(X[:1], "16x16")  # (1, 256)
    img = x.view(1, 1, 16, 16)
    shifted = torch.roll(F.pad(img, (1, 1, 1, 1)), shifts=1, dims=3)[:, :, 1:-1, 1:-1].reshape(1, 256)
    other = flat_inputs(X[1:2], "16x16")
    T = tangent_vectors(torch.cat([x, shifted, other]))
    assert T.shape == (3, 256, 7)
    td_shift = tangent_distance(x, T[:1], shifted, T[1:2])
    td_other = tangent_distance(x, T[:1], other, T[2:3])
    eu_shift = (x - shifted).square().sum()
    assert td_shift < 0.5 * eu_shift  # the tangent plane absorbs most of a one-pixel shift
    assert td_other > td_shift
    assert float(tangent_distance(x, T[:1], x, T[:1])) == pytest.approx(0.0, abs=1e-6)


def test_flat_inputs_crop16_is_the_digits_own_box_at_16x16() -> None:
    X, _ = load_split("mnist", False)
    X = X[:200]
    frame, crop = flat_inputs(X, "16x16"), flat_inputs(X, "crop16")
    assert frame.shape == crop.shape == (200, 256) and crop.dtype == torch.float32
    assert crop.min() >= 0 and crop.max() <= 1 and crop.max() > 0.9
    # "16x16" is still the whole frame, shrunk (bilinear, antialiased), as before
    x = X.float().div(255).unsqueeze(1)
    old = F.interpolate(x, size=(16, 16), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    assert torch.equal(frame, old.flatten(1))
    # "crop16" is the 20x20 window around the ink subsampled the same way: LeNet-1's input, on [0, 1]
    box = deslant.crop_to_ink(x, 20)
    want = F.interpolate(box, size=(16, 16), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    assert torch.equal(crop, want.flatten(1))
    lenet1 = (paper.paper_inputs(X, "crop16in28")[:, :, 6:22, 6:22] + 0.1) / 1.275  # same digits, paper's scale
    assert torch.allclose(crop, lenet1.clamp(0, 1).flatten(1), atol=1e-5)
    # the ink stays whole (the crop loses none of it, the subsampling only averages it) and larger
    assert torch.allclose(box.sum((1, 2, 3)), x.sum((1, 2, 3)))
    assert torch.allclose(crop.sum(1), x.sum((1, 2, 3)) * (16 / 20) ** 2, rtol=0.05)  # within 3.3% here
    def rows(t: torch.Tensor) -> torch.Tensor:
        return (t.view(-1, 16, 16) > 0.2).any(2).sum(1).float()

    assert rows(crop).mean() > rows(frame).mean() + 2  # about 16 rows of ink against 12
    with pytest.raises(ValueError, match="crop16"):
        flat_inputs(X, "crop20")


def test_tangent_validation_holds_out_training_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from lenet_utils import data
    from lenet_utils.fig9 import base, tangent_study
    from lenet_utils.fig9.tangent_study import TANGENT_VALIDATION_COLUMNS, tangent_validation

    splits, seen = [], []  # every split the study loads (the training set only), the digits it prepares
    real, real_flat = data.load_split, base.flat_inputs
    monkeypatch.setattr(data, "load_split", lambda name, train: splits.append(train) or real(name, train))
    monkeypatch.setattr(base, "flat_inputs", lambda images, kind: seen.append(images) or real_flat(images, kind))
    out = tmp_path / "tangent_validation.csv"
    argv = ["fig9", "--tangent-validation", str(out), "--inputs", "16x16,crop16", "--sigmas", "1,0.5",
            "--prefilters", "20", "--train-subset", "500", "--held-out", "100"]  # fmt: skip
    assert cli_main(argv) == 0
    assert "knn-tangent (crop16) sigma 0.5, prefilter 20: held out" in capsys.readouterr().out
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == TANGENT_VALIDATION_COLUMNS
    assert [(r["input"], r["sigma"]) for r in rows] == [("16x16", "1.0"), ("16x16", "0.5"), ("crop16", "1.0"),
                                                          ("crop16", "0.5")]  # fmt: skip
    rid = "knn-tangent|input=16x16|sigma=1|prefilter=20|k=1|ridge=0.01|prototypes=500|held_out=100"
    assert rows[0]["run_id"] == rid and len({r["run_id"] for r in rows}) == 4
    assert all(r["prototypes"] == "500" and r["held_out"] == "100" and r["k"] == "1" for r in rows)
    assert all(0 <= float(r["held_out_error_pct"]) < 40 for r in rows) and "--tangent-validation" in rows[0]["command"]
    # done settings are skipped: nothing fitted again
    assert tangent_validation(["crop16"], [0.5], [20], prototypes=500, held_out=100, out=out) == []
    # prototypes: the first training digits; held out: training digits 50,000 onwards, never the test set
    assert splits and all(splits) and tangent_study.PROTOTYPES == 50_000 and tangent_study.HELD_OUT == 10_000
    train, _ = real("mnist", True)
    assert len(seen) == 4  # prototypes and held-out digits, once per input kind
    assert torch.equal(seen[0], train[:500]) and torch.equal(seen[1], train[50_000:50_100])


@pytest.mark.parametrize(("flag", "value", "message"),
                         [("--inputs", "raw", "not an input of the tangent distance"),
                          ("--sigmas", "1,wide", "not a number"), ("--sigmas", "0", "must be a positive number"),
                          ("--prefilters", "100,1.5", "not a whole number"),
                          ("--prefilters", "0", "at least 1")])  # fmt: skip
def test_the_tangent_study_refuses_bad_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str,
                                             value: str, message: str) -> None:  # fmt: skip
    out = tmp_path / "study.csv"
    assert cli_main(["fig9", "--tangent-validation", str(out), "--held-out", "10", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and value.split(",")[-1] in err and not out.exists()


@pytest.mark.parametrize(
    ("row", "max_error"),
    [("linear-deslant", 0.30), ("pairwise-deslant", 0.25), ("knn", 0.25), ("pca40-quadratic", 0.20),
     ("rbf1000", 0.30), ("knn-tangent", 0.20), ("svm-poly4-deslant", 0.15)],
)  # fmt: skip
def test_classic_rows_learn_on_a_subset(row: str, max_error: float) -> None:
    res = run_row(row, train_subset=2000, test_subset=300)
    assert res["error_pct"] < 100 * max_error, res
    # rejection: some digits must go (the error is above 0.5%), not all of them
    assert 0 < res["reject_for_0_5_pct"] < 100 and res["reject_for_0_5_pct"] >= res["error_pct"] - 0.5
    assert res["train_size"] == 2000 and res["test_size"] == 300 and res["macs_per_image"] > 0
    assert res["parameters"] > 0 and res["paper_error_pct"] == get_row(row).paper_error


def test_rbf_row_depends_on_its_seed_and_repeats() -> None:
    a = run_row("rbf1000", seed=0, train_subset=600, test_subset=300)
    b = run_row("rbf1000", seed=0, train_subset=600, test_subset=300)
    c = run_row("rbf1000", seed=1, train_subset=600, test_subset=300)
    assert a["error_pct"] == b["error_pct"]
    assert a["run_id"] != c["run_id"]


def test_every_row_has_the_paper_value_and_a_way_or_a_reason() -> None:
    names = [r.name for r in ROWS]
    assert len(names) == len(set(names)) == 33
    for r in ROWS:
        assert 0 < r.paper_error < 13
        assert r.family in ("classic", "net", "features", "boost", None)
        assert r.family is not None or r.note  # a row not run says why
        if r.family in ("net", "boost"):
            assert r.spec[0] == "paper" or r.spec[0] in models.PAPER_NETS
        if r.family == "features":
            assert r.spec[0] in ("knn", "local")
    assert math.isclose(sum(r.paper_error for r in ROWS if r.name.startswith("lenet5")), 0.95 + 0.85 + 0.8 + 0.8)


# ------------------------------------------------------------------------------------------
# The command


def test_command_lists_rows(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["fig9", "--list"]) == 0
    out = capsys.readouterr().out
    assert "knn-tangent" in out and "12.00" in out and "boosted LeNet-4" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["fig9", "nope"], "unknown Fig. 9 row"), (["fig9", "knn", "--seed", "1"], "deterministic"),
     (["fig9", "rs-svm-poly5-deslant"], "cannot be run")],
)  # fmt: skip
def test_command_bad_input_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_command_appends_one_row_per_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fig9.csv"
    argv = ["fig9", "linear", "--train-subset", "500", "--test-subset", "200", "--out", str(out)]
    assert cli_main(argv) == 0
    assert cli_main(argv) == 0  # the same run again: not trained, not written twice
    assert "already in" in capsys.readouterr().out
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and list(rows[0]) == COLUMNS
    r = rows[0]
    assert r["row"] == "linear" and r["paper_error_pct"] == "12.0" and float(r["error_pct"]) < 40
    assert r["train_size"] == "500" and r["macs_per_image"] == "7850" and "fig9 linear" in r["command"]


def test_net_row_through_the_command_is_resumable(tmp_path: Path) -> None:
    out, runs = tmp_path / "fig9.csv", tmp_path / "runs"
    argv = ["fig9", "lenet1", "--train-subset", "500", "--test-subset", "200", "--passes", "1",
            "--out", str(out), "--run-dir", str(runs), "--seed", "3"]  # fmt: skip
    assert cli_main(argv) == 0
    (run_folder,) = runs.iterdir()
    assert (run_folder / "checkpoint.pt").is_file() and "seed3" in run_folder.name
    with open(out, newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["passes"] == "1" and row["parameters"] == "2578" and row["macs_per_image"] == "98542"
    result = run_row("lenet1", seed=3, train_subset=500, test_subset=200, passes=1, run_dir=runs)
    assert '"passes_trained_here": 0' in result["info"]  # the checkpoint was reused, nothing retrained
    assert result["error_pct"] == float(row["error_pct"])
    assert not append_result(out, result)
    # two queue workers finishing together take turns at the file; a writer that never lets go is reported
    import threading

    from lenet_utils.sweep import SweepBusyError, one_writer

    holding, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        with one_writer(out):
            holding.set()
            release.wait(10)

    t = threading.Thread(target=other_worker)
    t.start()
    holding.wait(10)
    other = {**result, "run_id": result["run_id"] + "|other"}
    with pytest.raises(SweepBusyError, match="another sweep"):
        append_result(out, other, wait=0)
    threading.Timer(0.2, release.set).start()
    assert append_result(out, other, wait=30)  # written once the other worker let go
    t.join()
    assert [r["run_id"] for r in read_results(out)] == [result["run_id"], other["run_id"]]
    # a run folder has one trainer at a time: a second worker asking for it waits its turn
    order: list[str] = []
    holding.clear()
    release.clear()

    def trainer() -> None:
        with one_writer(run_folder):
            holding.set()
            release.wait(10)
            order.append("first trainer done")

    t = threading.Thread(target=trainer)
    t.start()
    holding.wait(10)
    threading.Timer(0.2, release.set).start()
    with one_writer(run_folder, wait=True):
        order.append("second trainer in")
    t.join()
    assert order == ["first trainer done", "second trainer in"]


def test_pairwise_combinations_agree_mostly_and_refuse_others() -> None:
    from lenet_utils.fig9.linear import fit_pairwise

    X, y = load_split("mnist", True)
    Xtr, ytr, Xq, yq = flat_inputs(X[:1000], "deslant"), y[:1000], flat_inputs(X[1000:1300], "deslant"), y[1000:1300]
    vote = fit_pairwise(Xtr, ytr).predict(Xq)
    total = fit_pairwise(Xtr, ytr, combine="sum").predict(Xq)
    assert (vote == total).float().mean() > 0.8  # a wrong sign would make them disagree almost always
    assert (vote != yq).float().mean() < 0.25 and (total != yq).float().mean() < 0.25
    with pytest.raises(ValueError, match="combine"):
        fit_pairwise(Xtr[:50], ytr[:50], combine="max")


def test_command_refuses_a_results_file_of_other_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "other.csv"
    out.write_text("run_id,sweep,seed\nx,y,0\n")
    assert cli_main(["fig9", "linear", "--train-subset", "100", "--test-subset", "50", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "different columns" in err and "\n" not in err
    assert out.read_text() == "run_id,sweep,seed\nx,y,0\n"  # untouched


# ------------------------------------------------------------------------------------------
# The fully connected nets' settings, the fixed distortion set, the huge distortions


def test_fc_nets_and_lenets_take_their_own_damping_and_say_so() -> None:
    from lenet_utils.fig9.nets import FC_SETTINGS, LENET_SETTINGS, NET_SETTINGS, net_settings, recipe_tag
    from lenet_utils.fig9.rows import get_row, run_id, run_tag

    assert NET_SETTINGS == {"init": "sqrt", "mu": 1.0, "batch_size": 10}  # LeNet-5's committed recipe
    assert net_settings("paper") == NET_SETTINGS and recipe_tag("paper") == ""
    for model in ("lenet1", "lenet4"):
        assert net_settings(model) == {**NET_SETTINGS, **LENET_SETTINGS.get(model, {})}
    for model in ("fc-300", "fc-1000", "fc-300-100", "fc-500-150", "fc20-300"):
        assert net_settings(model) == {**NET_SETTINGS, **FC_SETTINGS} != NET_SETTINGS
    tag = recipe_tag("fc-300")
    assert tag == f"mu={FC_SETTINGS['mu']:g}"
    # a result of the old settings (no tag) is never taken for one of the new
    assert run_id("fc-300", 0, 60_000, 10_000, 20).endswith("|" + tag)
    assert run_id("lenet5", 0, 60_000, 10_000, 20) == "lenet5|seed=0|train=60000|test=10000|passes=20"
    # LeNet-4's own damping marks its row and every row built on its net, and their folders
    tag4 = recipe_tag("lenet4")
    assert tag4 == f"mu={LENET_SETTINGS['lenet4']['mu']:g}" != ""
    for row in ("lenet4", "lenet4-knn", "lenet4-local", "boosted-lenet4-dist"):
        assert get_row(row) and run_id(row, 0, 60_000, 10_000, 20).endswith("|" + tag4), row
    assert run_tag("lenet4", 0, None, None, 20, tag4.replace("=", "")) == "lenet4_seed0_" + tag4.replace("=", "")


@pytest.mark.parametrize(("flag", "value", "message"),
                         [("--models", "lenet9", "not a network"), ("--mus", "1,zero", "not a number"),
                          ("--mus", "0", "must be positive"), ("--inputs", "12x12", "not an input kind")])  # fmt: skip
def test_the_study_refuses_bad_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
                                     message: str) -> None:  # fmt: skip
    out = tmp_path / "study.csv"
    argv = ["fig9", "--fc-validation", str(out), "--models", "lenet1", "--passes", "1", flag, value]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and value.split(",")[-1] in err and not out.exists()



def test_the_study_trains_lenet4_sparse_apart_from_lenet4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "study.csv"
    argv = ["fig9", "--fc-validation", str(out), "--models", "lenet4,lenet4-sparse", "--mus", "0.1", "--passes", "1",
            "--train-subset", "50"]  # fmt: skip
    assert cli_main(argv) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["lenet4", "lenet4-sparse"] and [r["input"] for r in rows] == ["pad32"] * 2
    assert rows[1]["run_id"] == "lenet4-sparse|input=pad32|mu=0.1|passes=1|train=50|val=10000|seed=0"
    assert rows[0]["run_id"] == rows[1]["run_id"].replace("lenet4-sparse", "lenet4")
    capsys.readouterr()
    argv[4] = "lenet4-dense"  # an unknown name is still refused, the known ones listed
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "'lenet4-dense' is not a network of the study" in err and "lenet4-sparse" in err


def test_the_study_compares_lenet1_inputs(tmp_path: Path) -> None:
    from lenet_utils.fig9.fc_study import fc_validation

    rows = fc_validation(["lenet1"], [1.0], passes=1, train_subset=200, inputs=["16in28", "crop16in28"],
                         out=tmp_path / "study.csv")  # fmt: skip
    assert [r["input"] for r in rows] == ["16in28", "crop16in28"]
    assert rows[0]["run_id"] != rows[1]["run_id"]


def test_fc_validation_holds_out_training_digits(tmp_path: Path) -> None:
    from lenet_utils.fig9.fc_study import FC_VALIDATION_COLUMNS, fc_validation

    out = tmp_path / "fc_validation.csv"
    argv = ["fig9", "--fc-validation", str(out), "--models", "fc-300", "--mus", "1,0.1", "--passes", "1",
            "--train-subset", "300"]  # fmt: skip
    assert cli_main(argv) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == FC_VALIDATION_COLUMNS and [r["mu"] for r in rows] == ["1.0", "0.1"]
    assert [r["input"] for r in rows] == ["28", "28"] and rows[0]["run_id"].startswith("fc-300|input=28|mu=1|")
    assert all(r["validation_size"] == "10000" and r["train_size"] == "300" for r in rows)
    assert rows[0]["validation_error_pct"] != rows[1]["validation_error_pct"]  # mu changes the run
    assert "--fc-validation" in rows[0]["command"]
    # done runs are skipped: nothing trained again
    assert fc_validation(["fc-300"], [1.0, 0.1], passes=1, train_subset=300, out=out) == []


@pytest.mark.parametrize(("row", "setting", "value"),
                         [("lenet5-huge-dist", "distort_range", 2.0),
                          ("lenet5-dist-fixed", "distortion_protocol", "fixed")])  # fmt: skip
def test_distortion_rows_train_with_their_setting(tmp_path: Path, row: str, setting: str, value: object) -> None:
    import json

    result = run_row(row, seed=1, train_subset=30, test_subset=20, passes=1, run_dir=tmp_path)
    (folder,) = tmp_path.iterdir()
    config = json.loads((folder / "run.json").read_text())["config"]
    assert config[setting] == value and config["copies"] == 10 and config["distortions"]
    assert result["train_size"] == 30 and result["passes"] == 1


# ------------------------------------------------------------------------------------------
# Rejection (Fig. 10), LeNet-4's features, boosting


def test_rejection_for_error_known_answers() -> None:
    from lenet_utils.fig9.reject import rejection_for_error

    conf = torch.arange(1000.0)
    wrong = torch.zeros(1000, dtype=torch.bool)
    wrong[[0, 5, 10, 20, 30, 40, 500, 999]] = True  # 8 mistakes: 0.8%
    # refusing the 21 least confident leaves 4 mistakes among 979 (0.41%); 20 would leave 5 of 980 (0.51%)
    assert rejection_for_error(conf, wrong) == pytest.approx(2.1)
    tied = conf.clone()
    tied[21] = tied[20]  # the 21st and 22nd digits are refused together
    assert rejection_for_error(tied, wrong) == pytest.approx(2.2)
    assert rejection_for_error(conf, wrong, target=0.01) == 0.0  # 0.8% is under 1% already
    assert rejection_for_error(conf, torch.ones(1000, dtype=torch.bool)) == 100.0
    assert rejection_for_error(torch.zeros(1000), wrong) == 100.0  # one confidence: all or nothing
    assert rejection_for_error(-conf, wrong) > 50  # confident mistakes: most digits must go
    with pytest.raises(ValueError, match="as many"):
        rejection_for_error(conf[:10], wrong)


def test_confidences_margin_penalty_and_neighbours() -> None:
    from lenet_utils.fig9.reject import margin, neighbour_confidence, penalty_margin

    s = torch.tensor([[0.1, 0.9, 0.3], [2.0, -1.0, 1.5]])
    assert torch.allclose(margin(s), torch.tensor([0.6, 0.5], dtype=torch.float64))
    assert torch.allclose(penalty_margin(s), torch.tensor([0.2, 2.5], dtype=torch.float64))
    labels = torch.tensor([[1, 1, 1, 2], [1, 1, 2, 2], [1, 1, 1, 1]])
    dists = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 1.5, 1.1, 9.0], [1.0, 2.0, 3.0, 5.0]])
    c = neighbour_confidence(labels, dists, torch.tensor([1, 1, 1]), k=3)
    assert c[0] == pytest.approx(6 + 3 / 5)  # 3 votes to 0; other class at 4 vs 1
    assert c[1] == pytest.approx(2 + 0.1 / 2.1)  # 2 votes to 1; other class at 1.1 vs 1
    assert c[2] == pytest.approx(6 + 4 / 6)  # no other class among the 4: the 4th distance stands in
    assert c[1] < c[0] < c[2]


def test_local_scores_match_a_ridge_per_query() -> None:
    from sklearn.linear_model import Ridge

    from lenet_utils.fig9.features import local_scores

    g = torch.Generator().manual_seed(0)
    P, labels = torch.randn(200, 6, generator=g), torch.randint(0, 10, (200,), generator=g)
    Fq = torch.randn(7, 6, generator=g)
    K, lam = 30, 0.3
    got = local_scores(Fq, P, labels, K, (lam, 3.0), block=3)
    assert set(got) == {lam, 3.0} and got[lam].shape == (7, 10)
    ix = nearest(Fq, P, K)[1]
    targets = 2 * F.one_hot(labels, 10).double() - 1
    for i in range(7):  # the same criterion: mean squared error + lam |W|^2, the bias free
        r = Ridge(alpha=lam * K).fit(P[ix[i]].double().numpy(), targets[ix[i]].numpy())
        want = r.predict(Fq[i : i + 1].double().numpy())[0]
        assert torch.allclose(got[lam][i], torch.from_numpy(want), atol=1e-8)


def test_penultimate_features_feed_lenet4s_last_layers() -> None:
    from lenet_utils.fig9.features import penultimate

    torch.manual_seed(0)
    net = models.lenet4(init="sqrt").eval()
    X = torch.randn(5, 1, 32, 32)
    f = penultimate(net, X)
    assert f.shape == (5, 120)
    with torch.no_grad():
        assert torch.allclose(net[11:](f), net(X), atol=1e-5)


def test_boosting_filters_and_sum() -> None:
    from lenet_utils.fig9.boost import balanced_selection, disagreement_selection, sum_outputs

    correct = torch.tensor([True, False, True, True, False, True, True, False, True])
    sel = balanced_selection(correct, 4)
    assert sel.tolist() == [0, 1, 2, 4] and int(correct[sel].sum()) == 2  # 2 right, 2 wrong, stream order
    sel = balanced_selection(correct, 100)  # only 3 mistakes: 3 of each
    assert len(sel) == 6 and int((~correct[sel]).sum()) == 3 and torch.equal(sel, sel.sort().values)
    assert len(balanced_selection(torch.ones(5, dtype=torch.bool), 4)) == 0  # no mistake, nothing to balance
    p1, p2 = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([0, 7, 2, 8, 9, 5])
    assert disagreement_selection(p1, p2, 10).tolist() == [1, 3, 4]
    assert disagreement_selection(p1, p2, 2).tolist() == [1, 3]
    # summing the place code's penalties = summing the ten F6 outputs (largest sum wins)
    torch.manual_seed(1)
    xs = [torch.rand(50, 10) * 3.4 - 1.7 for _ in range(3)]
    rbf = models.place_code_output()
    with torch.no_grad():
        labels, conf = sum_outputs([rbf(x) for x in xs])
    assert torch.equal(labels, torch.stack(xs).sum(0).argmax(1))
    top2 = torch.stack(xs).sum(0).topk(2, dim=1).values.double()
    assert torch.allclose(conf, 4 * (top2[:, 0] - top2[:, 1]), atol=1e-5)  # y_i = const - 4 x_i


def test_feature_rows_share_the_lenet4_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, out = tmp_path / "runs", tmp_path / "fig9.csv"
    a = run_row("lenet4-knn", seed=0, train_subset=600, test_subset=200, passes=1, run_dir=runs)
    argv = ["fig9", "lenet4-local", "--train-subset", "600", "--test-subset", "200", "--passes", "1",
            "--out", str(out), "--run-dir", str(runs)]  # fmt: skip
    assert cli_main(argv) == 0
    assert cli_main(argv) == 0 and "already in" in capsys.readouterr().out  # the command finds its run id
    (b,) = read_results(out)
    # one net, trained once, in the folder the lenet4 row itself uses (its own damping in the name)
    assert [p.name for p in runs.iterdir()] == [run_tag("lenet4", 0, 600, 200, 1, folder_recipe("lenet4"))]
    assert runs.joinpath(f"lenet4_seed0_n600_t200_p1_{folder_recipe('lenet4')}").is_dir()
    ia, ib = json.loads(a["info"]), json.loads(b["info"])
    assert ia["lenet4_info"]["passes_trained_here"] == 1 and ib["lenet4_info"]["passes_trained_here"] == 0
    # the net's training is counted once, in the line of the row that trained it: a row that
    # reuses the finished net does not add the net's CPU (here made huge), one that trains it does
    assert ia["lenet4_info"]["cpu_all_passes"] and ib["lenet4_info"]["cpu_all_passes"]
    from lenet_utils.fig9 import nets

    real = nets.train_net
    monkeypatch.setattr(nets, "train_net", lambda *a, **k: {**real(*a, **k), "train_cpu_seconds": 1e6})
    again = run_row("lenet4-local", seed=0, train_subset=600, test_subset=200, passes=1, run_dir=runs)
    assert float(again["train_cpu_seconds"]) < 1e6
    more = run_row("lenet4-local", seed=0, train_subset=600, test_subset=200, passes=2, run_dir=runs)
    assert float(more["train_cpu_seconds"]) >= 1e6  # a 2-pass net: trained by this row
    assert ia["k"] in (1, 3, 5, 7, 9) and (ib["K"], ib["decay"]) != ("", "")
    assert ia["validation"] == ib["validation"] == 100
    for r in (a, b):
        assert float(r["error_pct"]) < 60 and 0 < float(r["reject_for_0_5_pct"]) <= 100
        assert int(r["macs_per_image"]) > 200_000 and r["passes"] in (1, "1")


def test_net_cpu_counts_every_pass_across_resumes(tmp_path: Path) -> None:
    from lenet_utils.fig9.nets import CPU_FILE, train_net

    folder = tmp_path / "run"
    kw = {"seed": 0, "train_subset": 300, "test_subset": 100, "out": folder}
    first = train_net("lenet1", passes=1, **kw)
    record = json.loads((folder / CPU_FILE).read_text())
    assert record["passes"] == 1 and 0 < record["cpu_seconds"] <= first["train_cpu_seconds"]
    # killed and resumed: the second process adds its pass to the first one's CPU
    second = train_net("lenet1", passes=2, **kw)
    assert second["info"]["passes_trained_here"] == 1 and second["info"]["cpu_all_passes"]
    assert second["train_cpu_seconds"] > record["cpu_seconds"]
    assert json.loads((folder / CPU_FILE).read_text())["passes"] == 2
    # a run folder without the record (trained by older code) says its CPU covers fewer passes
    (folder / CPU_FILE).unlink()
    third = train_net("lenet1", passes=3, **kw)
    assert third["info"]["passes_trained_here"] == 1 and not third["info"]["cpu_all_passes"]
    assert not (folder / CPU_FILE).exists()


def test_boosted_row_trains_three_resumable_nets(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    a = run_row("boosted-lenet4-dist", seed=0, train_subset=200, test_subset=100, passes=1, run_dir=runs)
    (folder,) = runs.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["net1", "net2", "net3"]
    info = json.loads(a["info"])
    n2 = info["screening"]["net2"]
    assert n2["kept"] % 2 == 0 and 0 < n2["kept"] <= 200 and n2["screened"] % 200 == 0
    assert 0 < info["screening"]["net3"]["kept"] <= 200 and len(info["net_errors"]) == 3
    assert a["macs_per_image"] == 3 * 262_406 and a["parameters"] == 3 * 50_698
    b = run_row("boosted-lenet4-dist", seed=0, train_subset=200, test_subset=100, passes=1, run_dir=runs)
    assert b["error_pct"] == a["error_pct"] and json.loads(b["info"])["screening"] == info["screening"]
    assert json.loads(b["info"])["net1_info"]["passes_trained_here"] == 0
    # a resumed boosted run counts the CPU its earlier processes spent on each of the three nets
    assert info["cpu_all_passes"] and json.loads(b["info"])["cpu_all_passes"]
    spent = [json.loads((folder / n / "cpu.json").read_text()) for n in ("net1", "net2", "net3")]
    assert [r["passes"] for r in spent] == [1, 1, 1]
    assert float(b["train_cpu_seconds"]) >= sum(r["cpu_seconds"] for r in spent)


def test_old_results_file_reads_and_upgrades(tmp_path: Path) -> None:
    from lenet_utils.fig9.rows import OLD_COLUMNS, already_done, upgrade_results_file

    out = tmp_path / "fig9.csv"
    old = {c: "x" for c in OLD_COLUMNS} | {"run_id": "old|seed=0"}
    out.write_text(",".join(OLD_COLUMNS) + "\n" + ",".join(old[c] for c in OLD_COLUMNS) + "\n")
    (row,) = read_results(out)
    assert row["reject_for_0_5_pct"] == "" and row["run_id"] == "old|seed=0" and list(row) == COLUMNS
    assert already_done(out, "old|seed=0") and not already_done(out, "new|seed=0")
    new = {c: "y" for c in COLUMNS} | {"run_id": "new|seed=0", "reject_for_0_5_pct": 1.5}
    assert append_result(out, new)  # the file gains the column, the old row keeps its values
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == COLUMNS and [r["run_id"] for r in rows] == ["old|seed=0", "new|seed=0"]
    assert rows[0]["reject_for_0_5_pct"] == "" and rows[0]["error_pct"] == "x"
    assert rows[1]["reject_for_0_5_pct"] == "1.5"
    assert not upgrade_results_file(out)  # already new: left alone
    assert not append_result(out, new)


def _as_old_file(out: Path, error_of_first: str | None = None) -> list[dict[str, str]]:
    """Rewrite ``out`` as a results file written before the rejection column (the first row's
    error replaced by ``error_of_first`` if given); its rows as they were."""
    from lenet_utils.fig9.rows import OLD_COLUMNS

    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, OLD_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows([{**r, "error_pct": error_of_first} if i == 0 and error_of_first else r
                     for i, r in enumerate(rows)])  # fmt: skip
    return rows


def test_fill_rejection_of_old_rows_without_retraining(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, runs = tmp_path / "fig9.csv", tmp_path / "runs"
    common = ["--train-subset", "500", "--test-subset", "200", "--out", str(out), "--run-dir", str(runs)]
    assert cli_main(["fig9", "linear", *common]) == 0
    assert cli_main(["fig9", "lenet1", "--passes", "1", *common]) == 0
    before = _as_old_file(out)
    assert all(r["reject_for_0_5_pct"] not in ("", None) for r in before)
    assert cli_main(["fig9", "--fill-rejection", "--out", str(out), "--run-dir", str(runs)]) == 0  # nets only
    assert "filled for 1 rows" in capsys.readouterr().out
    assert [r["reject_for_0_5_pct"] for r in read_results(out)] == ["", before[1]["reject_for_0_5_pct"]]
    assert cli_main(["fig9", "--fill-rejection", "classic", "--out", str(out), "--run-dir", str(runs)]) == 0
    assert [r["reject_for_0_5_pct"] for r in read_results(out)] == [r["reject_for_0_5_pct"] for r in before]
    # a stored error the classifier does not reproduce: that row left empty and reported, the others filled
    _as_old_file(out, error_of_first="99.0")
    assert cli_main(["fig9", "--fill-rejection", "all", "--out", str(out), "--run-dir", str(runs)]) == 1
    captured = capsys.readouterr()
    assert "filled for 1 rows" in captured.out
    assert "linear|" in captured.err and "came out as" in captured.err and "left empty" in captured.err
    assert [r["reject_for_0_5_pct"] for r in read_results(out)] == ["", before[1]["reject_for_0_5_pct"]]


def test_pairwise_decisions_are_scikit_learns_votes() -> None:
    from sklearn.svm import SVC

    from lenet_utils.fig9.linear import fit_pairwise
    from lenet_utils.fig9.reject import pairwise_decide
    from lenet_utils.fig9.svm import fit_svm_poly

    # three classes; outputs > 0 favour the pair's second class: (0,1), (0,2), (1,2)
    labels, conf = pairwise_decide(torch.tensor([[-1.0, -2.0, 0.5], [1.0, 0.3, -0.2], [1.0, -1.0, 1.0]]), 3)
    assert labels.tolist() == [0, 1, 0]  # 0 beats both; 1 beats both; a 1-1-1 tie goes to the summed outputs
    assert conf[0] == pytest.approx(1.0) and conf[1] == pytest.approx(0.2) and conf[2] == pytest.approx(-1.0)
    X, y = load_split("mnist", True)
    Xtr, ytr, Xq = flat_inputs(X[:600], "deslant"), y[:600], flat_inputs(X[600:900], "deslant")
    ours = fit_pairwise(Xtr, ytr).decide(Xq)
    from sklearn.linear_model import RidgeClassifier
    from sklearn.multiclass import OneVsOneClassifier

    ovo = OneVsOneClassifier(RidgeClassifier(alpha=1.0)).fit(Xtr.numpy(), ytr.numpy())
    assert torch.equal(ours[0], torch.from_numpy(ovo.predict(Xq.numpy())).long())
    svm = fit_svm_poly(Xtr, ytr).decide(Xq)[0]
    ref = SVC(kernel="poly", degree=4, gamma="scale", coef0=1.0, C=10.0, break_ties=True).fit(Xtr.numpy(), ytr.numpy())
    assert torch.equal(svm, torch.from_numpy(ref.predict(Xq.numpy())).long())


def test_translate_moves_every_pixel_by_one_and_wraps_nothing() -> None:
    from lenet_utils.fig9.svm import translate, virtual_examples

    img = torch.zeros(2, 28, 28)
    img[0, 10, 12] = 1.0
    img[1, 0, :] = 0.5  # a top row of ink: moved up, it leaves the frame (no wrapping to the bottom)
    img[1, :, 27] = 0.25  # a right column
    x = img.reshape(2, 784)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        got = translate(x, dy, dx).reshape(2, 28, 28)
        assert got[0].nonzero().tolist() == [[10 + dy, 12 + dx]]  # the pixel moved by one, nothing else
        assert torch.equal(got[1, max(dy, 0) : 28 + min(dy, 0), max(dx, 0) : 28 + min(dx, 0)],
                           img[1, max(-dy, 0) : 28 - max(dy, 0), max(-dx, 0) : 28 - max(dx, 0)])  # fmt: skip
    up, right = translate(x, -1, 0).reshape(2, 28, 28), translate(x, 0, 1).reshape(2, 28, 28)
    assert up[1, 27, :].abs().sum() == 0 and up[1, 0, :27].abs().sum() == 0  # the top row is gone
    assert right[1, :, 0].abs().sum() == 0 and right[1].sum() < img[1].sum()  # the right column is gone
    assert torch.equal(translate(translate(x[:1], 0, 1), 0, -1), x[:1])  # an interior pixel comes back
    Xv, yv = virtual_examples(x, torch.tensor([3, 7]))
    assert Xv.shape == (10, 784) and yv.tolist() == [3, 7] * 5 and torch.equal(Xv[:2], x)
    assert virtual_examples(x, torch.tensor([3, 7]), shifts=2)[0].shape == (18, 784)
    with pytest.raises(ValueError, match="leaves nothing"):
        translate(x, 28, 0)


def test_virtual_svm_trains_on_its_support_vectors_and_their_shifts() -> None:
    from sklearn.svm import SVC

    from lenet_utils.fig9.svm import GAMMA_FACTORS, _fit_svc, fit_virtual_svm

    X, y = load_split("mnist", True)
    Xtr, ytr, Xq, yq = flat_inputs(X[:600], "raw"), y[:600], flat_inputs(X[600:900], "raw"), y[600:900]
    fitted = fit_virtual_svm(Xtr, ytr, degree=4)
    info = fitted.info
    # gamma: the factor of "scale" with the fewest held-out errors (the last 120 digits), first on ties
    errors = info["gamma_held_out_errors"]
    assert list(errors) == [f"{f:g}" for f in GAMMA_FACTORS] and all(0 <= e <= 1 for e in errors.values())
    best = min(GAMMA_FACTORS, key=lambda f: errors[f"{f:g}"])
    scale = SVC(gamma="scale").fit(Xtr.numpy(), ytr.numpy())._gamma
    assert info["gamma"] == pytest.approx(best * scale, rel=1e-5)
    first = _fit_svc(Xtr, ytr, degree=4, C=10.0, cache_mb=200, gamma=info["gamma"])  # the same first machine
    assert info["support_vectors_first"] == len(first.support_) <= 600
    assert info["virtual_set"] == 5 * info["support_vectors_first"]
    assert 0 < info["support_vectors"] <= info["virtual_set"] and info["degree"] == 4 and info["shifts"] == 1
    n_sv = info["support_vectors"]
    assert n_sv * 784 < fitted.parameters < n_sv * 784 + 10 * n_sv and fitted.macs > n_sv * 784
    pred, conf = fitted.decide(Xq)
    assert torch.equal(pred, fitted.predict(Xq)) and conf.shape == (300,)
    assert (pred != yq).float().mean() < 0.25


def test_virtual_svm_row_runs_on_subsets() -> None:
    row = get_row("virtual-svm-poly9-dist")
    assert row.family == "classic" and row.spec == ("virtual_svm", "raw") and "not run" not in row.note
    res = run_row(row.name, train_subset=600, test_subset=200)
    info = json.loads(res["info"])
    assert res["train_size"] == 600 and res["test_size"] == 200 and res["error_pct"] < 25
    assert info["virtual_set"] == 5 * info["support_vectors_first"] and info["degree"] == 9
    assert res["macs_per_image"] > 784 * info["support_vectors"] and res["passes"] == ""
    assert res["run_id"] == "virtual-svm-poly9-dist|seed=0|train=600|test=200|passes="


def test_crop_to_ink_keeps_every_raw_digit_whole() -> None:
    """MNIST's digits fit a 20x20 box: the 20x20 window around the ink holds all of it, at the
    original resolution (an integer crop: the window's pixels are the image's)."""
    X, _ = load_split("mnist", False)
    x = X[:500].float() / 255
    crop = deslant.crop_to_ink(x, 20)
    assert crop.shape == (500, 20, 20)
    assert torch.allclose(crop.sum((1, 2)), x.sum((1, 2)))  # no ink lost
    # one digit by hand: its window is somewhere in the image, pixel for pixel
    i = 7
    hits = [(r, c) for r in range(9) for c in range(9) if torch.equal(x[i, r : r + 20, c : c + 20], crop[i])]
    assert hits, "the crop is not a window of the image"


def test_crop_to_ink_edges_and_errors() -> None:
    x = torch.zeros(3, 1, 28, 28)
    x[0, 0, 0, 0] = 1.0  # ink in a corner: the window moves inside the image
    x[1, 0, 27, 27] = 1.0
    crop = deslant.crop_to_ink(x, 20)
    assert crop.shape == (3, 1, 20, 20)
    assert crop[0, 0, 0, 0] == 1 and crop[1, 0, -1, -1] == 1
    assert crop[2].abs().sum() == 0  # no ink: the central window, empty
    blank = torch.full((1, 1, 28, 28), -0.1)
    blank[0, 0, 10:14, 12:18] = 1.0
    got = deslant.crop_to_ink(blank, 20, background=-0.1)
    assert got.max() == 1.0 and (got == 1.0).sum() == 24  # all the ink, on the paper's scale
    with pytest.raises(ValueError, match="larger than the images"):
        deslant.crop_to_ink(x, 30)
