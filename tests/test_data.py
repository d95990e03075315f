"""lenet_utils.data: checksums, fetch from a mirror, errors, and the in-memory loaders."""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lenet_utils import data

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def cache() -> Path:
    """The repository's data cache, fetched (from $LENET_DATA_MIRROR when set)."""
    return data.fetch("all", REPO / "data")


@pytest.fixture()
def mirror(cache: Path, tmp_path: Path) -> Path:
    """A small mirror folder in torchvision's layout (.gz files), made from the verified cache."""
    root = tmp_path / "mirror"
    for folder in ("MNIST", "FashionMNIST"):
        (root / folder / "raw").mkdir(parents=True)
        for f in (cache / folder / "raw").iterdir():
            with open(f, "rb") as src, gzip.open(root / folder / "raw" / f"{f.name}.gz", "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst)
    return root


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No network: every socket connection fails at once, as on an offline machine."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)


def test_checksums_match_shared_sums() -> None:
    """The digests in the package are the canonical ones shipped in ../shared/data/SHA256SUMS."""
    sums = SHARED / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("../shared/data/SHA256SUMS not present on this machine")
    expected = {}
    for line in sums.read_text().splitlines():
        digest, path = line.split()
        folder, _, name = path.split("/")
        expected[(folder, name)] = digest
    ours = {(folder, name): d for folder, files in data.DATASETS.values() for name, d in files.items()}
    assert ours == expected


def test_cache_verifies(cache: Path) -> None:
    for name in ("mnist", "fashion"):
        paths = data.verify(cache, name)
        assert len(paths) == 4 and all(p.stat().st_size > 0 for p in paths)


def test_fetch_from_mirror(mirror: Path, tmp_path: Path, offline: None) -> None:
    root = data.fetch("fashion", tmp_path / "cache", mirror=mirror)
    assert len(data.verify(root, "fashion")) == 4
    # nothing half-written left behind, and files are readable by everyone
    leftovers = [p for p in (root / "FashionMNIST" / "raw").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert all(p.stat().st_mode & 0o044 for p in (root / "FashionMNIST" / "raw").iterdir())


def test_fetch_uses_mirror_env(mirror: Path, tmp_path: Path, offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    root = data.fetch("mnist", tmp_path / "cache")
    assert len(data.verify(root, "mnist")) == 4


def test_torchvision_finds_fetched_files(mirror: Path, tmp_path: Path, offline: None) -> None:
    import torchvision

    root = data.fetch("all", tmp_path / "cache", mirror=mirror)
    ds = torchvision.datasets.FashionMNIST(str(root), train=False, download=True)
    assert len(ds) == 10_000
    ds = torchvision.datasets.MNIST(str(root), train=True, download=True)
    assert len(ds) == 60_000


def test_truncated_file_is_named_with_fix(cache: Path, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    shutil.copytree(cache / "MNIST", root / "MNIST")
    victim = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    with open(victim, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(data.DataError) as err:
        data.verify(root, "mnist")
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and "truncated" in msg and "lenet_utils fetch" in msg


def test_truncated_file_repaired_from_mirror(cache: Path, mirror: Path, tmp_path: Path, offline: None) -> None:
    root = tmp_path / "cache"
    shutil.copytree(cache / "MNIST", root / "MNIST")
    victim = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    victim.write_bytes(victim.read_bytes()[:100])
    data.fetch("mnist", root, mirror=mirror)
    assert len(data.verify(root, "mnist")) == 4


def test_corrupt_mirror_file_leaves_nothing(mirror: Path, tmp_path: Path, offline: None) -> None:
    bad = mirror / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b"\x00\x00\x08\x01" + b"\x00" * 50)
    root = tmp_path / "cache"
    with pytest.raises(data.DataError, match="train-labels-idx1-ubyte"):
        data.fetch("mnist", root, mirror=mirror)
    raw = root / "MNIST" / "raw"
    assert not (raw / "train-labels-idx1-ubyte").exists()
    assert [p.name for p in raw.iterdir() if p.name.startswith(".")] == []


def test_missing_mirror_folder(tmp_path: Path, offline: None) -> None:
    with pytest.raises(data.DataError, match="does not exist"):
        data.fetch("mnist", tmp_path / "cache", mirror=tmp_path / "nowhere")


def test_offline_without_mirror_is_one_clear_error(tmp_path: Path, offline: None) -> None:
    with pytest.raises(data.DataError) as err:
        data.fetch("mnist", tmp_path / "cache")
    msg = str(err.value)
    assert "could not download MNIST" in msg and data.MIRROR_ENV in msg
    # the failed download leaves no staging folder or partial file behind
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []


def test_cli_offline_message(tmp_path: Path) -> None:
    """The command prints one line naming the fix, not a traceback (a real subprocess)."""
    env = {k: v for k, v in os.environ.items() if k != data.MIRROR_ENV}
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network is unreachable')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "from lenet_utils.cli import main; raise SystemExit(main())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "fetch", "--dataset", "mnist", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: could not download MNIST") and data.MIRROR_ENV in proc.stderr


def test_cli_fetch_with_mirror(mirror: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lenet_utils",
            "fetch",
            "--dataset",
            "fashion",
            "--root",
            str(tmp_path),
            "--mirror",
            str(mirror),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "FashionMNIST: 4 files verified" in proc.stdout


def test_load_split_shapes_and_ranges(cache: Path) -> None:
    X, y = data.load_split("mnist", train=True, root=cache)
    assert X.shape == (60_000, 28, 28) and X.dtype == torch.uint8
    assert y.shape == (60_000,) and y.dtype == torch.int64
    assert int(X.max()) == 255 and int(X.min()) == 0
    assert sorted(y.unique().tolist()) == list(range(10))
    Xt, yt = data.load_split("fashion", train=False, root=cache)
    assert Xt.shape == (10_000, 28, 28) and torch.bincount(yt).tolist() == [1000] * 10


@pytest.mark.parametrize("name", ["mnist", "fashion"])
def test_stats(cache: Path, name: str) -> None:
    X, _ = data.load_split(name, root=cache)
    x = X.float() / 255
    mean, std = data.STATS[name]
    assert abs(x.mean().item() - mean) < 5e-5 and abs(x.std().item() - std) < 5e-5


def test_loader_matches_torchvision_order(cache: Path) -> None:
    """Unshuffled batches are exactly torchvision's ToTensor() images, in order."""
    import torchvision
    from torchvision import transforms

    ds = torchvision.datasets.MNIST(str(cache), train=False, transform=transforms.ToTensor())
    _, test_iter = data.load_data("mnist", 64, root=cache)
    X, y = next(iter(test_iter))
    for i in (0, 1, 63):
        img, label = ds[i]
        assert torch.equal(X[i], img) and y[i].item() == label


def test_loader_len_shapes_and_last_batch(cache: Path) -> None:
    train_iter, test_iter = data.load_data("fashion", 256, root=cache)
    assert len(train_iter) == 235 and len(test_iter) == 40
    batches = list(test_iter)
    assert len(batches) == 40 and batches[-1][0].shape == (16, 1, 28, 28)
    X, y = batches[0]
    assert X.dtype == torch.float32 and y.dtype == torch.int64
    assert X.min().item() >= 0.0 and X.max().item() <= 1.0


def test_padding_and_paper_scale(cache: Path) -> None:
    _, test_iter = data.load_data("mnist", 10, size=32, normalize="paper", root=cache)
    X, _ = next(iter(test_iter))
    assert X.shape == (10, 1, 32, 32)
    assert torch.allclose(X[:, :, :2, :], torch.full_like(X[:, :, :2, :], -0.1))  # padded border = background
    assert X.min().item() == pytest.approx(-0.1) and X.max().item() == pytest.approx(1.175)


def test_resize_and_standardise(cache: Path) -> None:
    train_iter, _ = data.load_data("mnist", 512, size=32, resize=True, normalize="standard", root=cache)
    X, _ = next(iter(train_iter))
    assert X.shape == (512, 1, 32, 32)
    assert abs(X.mean().item()) < 0.2 and 0.8 < X.std().item() < 1.2


def test_seeded_shuffle_repeats_and_varies_by_epoch(cache: Path) -> None:
    a, _ = data.load_data("mnist", 128, seed=3, root=cache)
    b, _ = data.load_data("mnist", 128, seed=3, root=cache)
    c, _ = data.load_data("mnist", 128, seed=4, root=cache)
    ya, yb, yc = (next(iter(it))[1] for it in (a, b, c))
    assert torch.equal(ya, yb) and not torch.equal(ya, yc)
    epoch2 = next(iter(a))[1]
    assert not torch.equal(ya, epoch2)
    # one epoch visits every example exactly once
    total = torch.cat([y for _, y in a])
    assert torch.equal(torch.bincount(total), torch.bincount(data.load_split("mnist", root=cache)[1]))


def test_validation_split(cache: Path) -> None:
    train_iter, val_iter, test_iter = data.load_data("mnist", 500, val_size=10_000, seed=1, root=cache)
    assert (train_iter.num_examples, val_iter.num_examples, test_iter.num_examples) == (50_000, 10_000, 10_000)
    Xtr, Xval = train_iter.X.flatten(1), val_iter.X.flatten(1)
    # disjoint: no validation image is also a training image at the same index set
    assert len(torch.unique(torch.cat([Xtr[:2000], Xval[:2000]]), dim=0)) > 3900


def test_bad_arguments(cache: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_data("cifar", 10, root=cache)
    with pytest.raises(ValueError, match="batch_size"):
        data.TensorLoader(torch.zeros(3, 1, 2, 2), torch.zeros(3), 0)
    with pytest.raises(ValueError, match="differ in length"):
        data.TensorLoader(torch.zeros(3, 1, 2, 2), torch.zeros(2), 1)
    with pytest.raises(ValueError, match="resize=True"):
        data.load_data("mnist", 10, size=31, root=cache)
    with pytest.raises(ValueError, match="uint8"):
        data.Preprocess()(torch.zeros(2, 28, 28), "mnist")


def test_truncated_idx_body_detected(cache: Path, tmp_path: Path) -> None:
    src = cache / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(src.read_bytes()[:5000])
    with pytest.raises(data.DataError, match="truncated"):
        data._read_idx(bad, 3)


def test_d2l_imports_and_finds_data_offline(cache: Path, offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """d2l 1.0.3 (installed --no-deps) imports with our versions, and its Fashion-MNIST loader
    (root ../data, as seen from chapters/) finds the fetched files without a network."""
    from d2l import torch as d2l

    monkeypatch.chdir(REPO / "chapters")
    monkeypatch.setattr(d2l, "get_dataloader_workers", lambda: 0)
    train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    X, y = next(iter(test_iter))
    assert X.shape == (256, 1, 28, 28) and y.shape == (256,)
    assert len(train_iter) == 235


def test_d2l_accuracy_on_our_loader(cache: Path) -> None:
    from d2l import torch as d2l

    _, test_iter = data.load_data("fashion", 1000, root=cache)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    torch.nn.init.zeros_(net[1].weight)
    torch.nn.init.zeros_(net[1].bias)
    # all-zero scores: argmax picks class 0 everywhere, and 1,000 of 10,000 test images are class 0
    assert d2l.evaluate_accuracy_gpu(net, test_iter) == pytest.approx(0.1)


def test_load_names_truncated_file_when_repair_impossible(cache: Path, tmp_path: Path, offline: None) -> None:
    """Offline with no mirror, loading a truncated cache names the file and the fix."""
    root = tmp_path / "cache"
    shutil.copytree(cache / "MNIST", root / "MNIST")
    victim = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    victim.write_bytes(victim.read_bytes()[:4096])
    with pytest.raises(data.DataError) as err:
        data.load_split("mnist", train=True, root=root)
    msg = str(err.value)
    assert "train-images-idx3-ubyte is corrupt or truncated" in msg and "--mirror" in msg
    assert "could not download" in msg
