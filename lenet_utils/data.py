"""MNIST and Fashion-MNIST: checksummed fetching and fast in-memory loaders.

Two jobs, both about getting the digits into tensors:

* :func:`fetch` puts the decompressed IDX files into torchvision's layout
  (``ROOT/MNIST/raw/``, ``ROOT/FashionMNIST/raw/``), so that
  ``torchvision.datasets.MNIST(ROOT, download=True)`` and d2l's
  ``load_data_fashion_mnist`` (root ``../data`` seen from ``chapters/``) find them
  without touching the network. Sources, in order: files already in place
  (verified), a mirror folder (``--mirror`` or ``$LENET_DATA_MIRROR``), the
  official download through torchvision. Every file is checked against its
  SHA-256 and written under a temporary name, then renamed, so an interrupted
  fetch leaves nothing half-written.
* :func:`load_data` returns :class:`TensorLoader` objects: the whole split held as
  one tensor, batches cut by indexing (no per-image PIL work), optional padding or
  resizing to 32x32 and normalisation done once. They yield ``(X, y)`` and have
  ``len()``, so ``d2l.train_ch6`` takes them unchanged.

Command line::

    python -m lenet_utils fetch [--mirror DIR] [--dataset mnist|fashion|all] [--root DIR]
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "DATASETS",
    "DataError",
    "TensorLoader",
    "default_root",
    "fetch",
    "load_data",
    "load_split",
    "paper_scale",
    "verify",
]

MIRROR_ENV = "LENET_DATA_MIRROR"
ROOT_ENV = "LENET_DATA_ROOT"

#: torchvision folder name of each dataset, and the SHA-256 of each *decompressed* file.
DATASETS: dict[str, tuple[str, dict[str, str]]] = {
    "mnist": (
        "MNIST",
        {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ),
    "fashion": (
        "FashionMNIST",
        {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ),
}

#: Mean and standard deviation of the training pixels (scaled to [0, 1]).
#: Chapter 1 recomputes both; ``tests/test_data.py`` checks them.
STATS: dict[str, tuple[float, float]] = {"mnist": (0.1307, 0.3081), "fashion": (0.2860, 0.3530)}


class DataError(RuntimeError):
    """Data missing, corrupt or unreachable; the message says which file and what to do."""


def _canonical(dataset: str) -> str:
    key = dataset.lower().replace("-", "").replace("_", "")
    aliases = {"mnist": "mnist", "fashion": "fashion", "fashionmnist": "fashion"}
    if key not in aliases:
        raise ValueError(f"unknown dataset {dataset!r}: use 'mnist' or 'fashion'")
    return aliases[key]


def default_root() -> Path:
    """Where the dataset cache lives.

    ``$LENET_DATA_ROOT`` if set; otherwise ``data/`` at the top of this book's
    checkout (found by walking up from the working directory to ``_toc.yml``);
    otherwise ``../data``, the root d2l's loaders use.
    """
    env = os.environ.get(ROOT_ENV)
    if env:
        return Path(env).expanduser()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() and (folder / "lenet_utils").is_dir():
            return folder / "data"
    return Path("../data")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def raw_dir(root: Path, dataset: str) -> Path:
    return Path(root) / DATASETS[dataset][0] / "raw"


def _fix_hint(dataset: str) -> str:
    return (
        f"run `python -m lenet_utils fetch --dataset {dataset}` to replace it "
        f"(offline: add `--mirror DIR` or set ${MIRROR_ENV} to a folder holding "
        f"{DATASETS[dataset][0]}/raw/*-ubyte[.gz])"
    )


def verify(root: str | Path | None = None, dataset: str = "mnist") -> list[Path]:
    """Check every decompressed file of ``dataset`` under ``root`` against its SHA-256.

    Returns the verified paths. Raises :class:`DataError` naming the first file
    that is missing or whose checksum differs (a truncated download, say).
    """
    dataset = _canonical(dataset)
    raw = raw_dir(Path(root) if root is not None else default_root(), dataset)
    paths = []
    for name, digest in DATASETS[dataset][1].items():
        path = raw / name
        if not path.is_file():
            raise DataError(f"{path} is missing: {_fix_hint(dataset)}")
        if _sha256(path) != digest:
            raise DataError(
                f"{path} is corrupt or truncated (SHA-256 does not match the published file): " + _fix_hint(dataset)
            )
        paths.append(path)
    return paths


def _install(src: Path, dest: Path, digest: str) -> None:
    """Copy ``src`` (decompressing ``.gz``) to ``dest`` via a temporary file, checking the digest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            opener = gzip.open if src.suffix == ".gz" else open
            try:
                with opener(src, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
            except (OSError, EOFError) as e:  # bad gzip stream, truncated archive
                raise DataError(f"{src} cannot be read ({e}): replace it with a good copy") from e
        if _sha256(tmp) != digest:
            raise DataError(
                f"{src} does not hold the published {dest.name} (SHA-256 mismatch): "
                "the mirror copy is corrupt or truncated; replace it with a good copy"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes files private; the cache is ordinary data
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _from_mirror(mirror: Path, raw: Path, dataset: str) -> None:
    folder = DATASETS[dataset][0]
    for name, digest in DATASETS[dataset][1].items():
        dest = raw / name
        if dest.is_file() and _sha256(dest) == digest:
            continue
        candidates = [
            mirror / folder / "raw" / f"{name}.gz",
            mirror / folder / "raw" / name,
            mirror / folder / f"{name}.gz",
            mirror / folder / name,
        ]
        src = next((c for c in candidates if c.is_file()), None)
        if src is None:
            raise DataError(
                f"mirror {mirror} has no {folder}/raw/{name}[.gz]: point the mirror at a folder "
                "laid out like torchvision's (MNIST/raw/, FashionMNIST/raw/)"
            )
        _install(src, dest, digest)


def _download(root: Path, raw: Path, dataset: str) -> None:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "fashion": torchvision.datasets.FashionMNIST}[dataset]
    # torchvision downloads into ROOT/<Folder>/raw; stage in a temporary root so that a failed or
    # interrupted download leaves nothing in the cache, then move the verified files into place.
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    try:
        try:
            cls(str(staging), train=True, download=True)
            cls(str(staging), train=False, download=True)
        except Exception as e:  # torchvision raises a RuntimeError per mirror; keep one message
            raise DataError(
                f"could not download {DATASETS[dataset][0]} ({type(e).__name__}: {str(e).splitlines()[0]}). "
                f"Offline? Point ${MIRROR_ENV} (or --mirror) at a folder with "
                f"{DATASETS[dataset][0]}/raw/*-ubyte.gz, or copy the files into {raw}."
            ) from None
        _from_mirror(staging, raw, dataset)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(
    dataset: str = "all",
    root: str | Path | None = None,
    mirror: str | Path | None = None,
    *,
    download: bool = True,
) -> Path:
    """Make sure the dataset's four decompressed IDX files are in place and intact.

    Args:
        dataset: ``"mnist"``, ``"fashion"`` or ``"all"``.
        root: the cache folder (default :func:`default_root`).
        mirror: a folder in torchvision's layout to copy from; default ``$LENET_DATA_MIRROR``.
        download: fall back to torchvision's download when nothing else has the files.

    Returns:
        The root folder, ready for ``torchvision.datasets.MNIST(root, download=True)``.

    Raises:
        DataError: a file is corrupt and cannot be replaced, or no source has it.
    """
    root = Path(root) if root is not None else default_root()
    if mirror is None and os.environ.get(MIRROR_ENV):
        mirror = os.environ[MIRROR_ENV]
    names = list(DATASETS) if dataset == "all" else [_canonical(dataset)]
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        raw = raw_dir(root, name)
        try:
            verify(root, name)
            continue
        except DataError as e:
            problem = e  # missing on a fresh machine, or corrupt: try to (re)place the files
        try:
            if mirror is not None:
                mirror_path = Path(mirror).expanduser()
                if not mirror_path.is_dir():
                    raise DataError(f"mirror folder {mirror_path} does not exist (from --mirror or ${MIRROR_ENV})")
                _from_mirror(mirror_path, raw, name)
            elif download:
                _download(root, raw, name)
            verify(root, name)
        except DataError as e:
            if "is missing" in str(problem):
                raise
            raise DataError(f"{problem}\nRepairing it failed: {e}") from None
    return root


# --------------------------------------------------------------------------------------------
# Reading IDX files into tensors


def _read_idx(path: Path, expected_ndim: int) -> np.ndarray:
    """Parse an IDX file (big-endian header: magic, then one uint32 per dimension)."""
    data = path.read_bytes()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    if ndim != expected_ndim:
        raise DataError(f"{path} has {ndim} dimensions, expected {expected_ndim}")
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(int)
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: {body.size} bytes of pixels for shape {tuple(dims)}")
    return body.reshape(tuple(dims))


@functools.lru_cache(maxsize=8)
def _load_split_cached(root: str, dataset: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    fetch(dataset, root)
    raw = raw_dir(Path(root), dataset)
    prefix = "train" if train else "t10k"
    images = torch.from_numpy(_read_idx(raw / f"{prefix}-images-idx3-ubyte", 3).copy())
    labels = torch.from_numpy(_read_idx(raw / f"{prefix}-labels-idx1-ubyte", 1).astype(np.int64))
    return images, labels


def load_split(
    dataset: str = "mnist", train: bool = True, root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole split as ``(images, labels)``: uint8 ``(N, 28, 28)`` and int64 ``(N,)``.

    Fetches (and verifies) the files first. Results are cached per process; do not
    modify the returned tensors in place.
    """
    root = Path(root) if root is not None else default_root()
    return _load_split_cached(str(root.resolve()), _canonical(dataset), train)


# --------------------------------------------------------------------------------------------
# Preprocessing and batching


def paper_scale(images: torch.Tensor) -> torch.Tensor:
    """Map pixels to the paper's range: background -0.1, full ink 1.175 (LeCun et al. 1998, §II.B).

    ``images`` is uint8 in [0, 255] (MNIST stores ink as 255); the map is affine.
    """
    return images.float() * ((1.175 + 0.1) / 255.0) - 0.1


@dataclass(frozen=True)
class Preprocess:
    """What :func:`load_data` does to the uint8 images, once, before batching.

    Attributes:
        size: output side; 28 keeps the images as stored, 32 pads (``resize=False``) or
            bilinearly resizes (``resize=True``) to the paper's input size.
        resize: resize instead of padding when ``size != 28``.
        normalize: ``None`` (pixels in [0, 1]), ``"standard"`` ((x - mean) / std with the
            training-set statistics), ``"paper"`` (background -0.1, ink 1.175), or a
            ``(mean, std)`` pair.
    """

    size: int = 28
    resize: bool = False
    normalize: str | tuple[float, float] | None = None

    def __call__(self, images: torch.Tensor, dataset: str) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 3:
            raise ValueError(f"expected uint8 images of shape (N, H, W), got {images.dtype} {tuple(images.shape)}")
        if self.normalize == "paper":
            x = paper_scale(images)
            background = -0.1
        else:
            x = images.float().div_(255.0)
            background = 0.0
        x = x.unsqueeze(1)  # (N, 1, 28, 28)
        if self.size != x.shape[-1]:
            if self.resize:
                x = torch.nn.functional.interpolate(
                    x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
                )
            else:
                pad = self.size - x.shape[-1]
                if pad < 0 or pad % 2:
                    raise ValueError(f"cannot pad 28x28 to {self.size}x{self.size}; use resize=True")
                x = torch.nn.functional.pad(x, (pad // 2,) * 4, value=background)
        if self.normalize == "standard":
            mean, std = STATS[dataset]
            x = (x - mean) / std
        elif isinstance(self.normalize, tuple):
            mean, std = self.normalize
            x = (x - mean) / std
        elif self.normalize not in (None, "paper"):
            raise ValueError(f"normalize must be None, 'standard', 'paper' or (mean, std), not {self.normalize!r}")
        return x.contiguous()


class TensorLoader:
    """Mini-batches cut from tensors held in memory.

    Iterating yields ``(X, y)`` pairs exactly like a ``DataLoader`` over the same
    data would, and ``len()`` is the number of batches, so the loader plugs into
    ``d2l.train_ch6`` and any ordinary training loop. Shuffling uses its own
    ``torch.Generator`` seeded with ``seed + epoch``, so runs repeat exactly and do
    not disturb the global RNG.
    """

    def __init__(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        if len(X) != len(y):
            raise ValueError(f"X and y differ in length: {len(X)} vs {len(y)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.X = X.to(device) if device is not None else X
        self.y = y.to(device) if device is not None else y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def __len__(self) -> int:
        n = len(self.X)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_examples(self) -> int:
        return len(self.X)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.X)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=g).to(self.X.device)
        else:
            order = None
        self.epoch += 1
        for b in range(len(self)):
            if order is None:
                sl = slice(b * self.batch_size, min(n, (b + 1) * self.batch_size))
                yield self.X[sl], self.y[sl]
            else:
                idx = order[b * self.batch_size : (b + 1) * self.batch_size]
                yield self.X[idx], self.y[idx]

    def __repr__(self) -> str:
        return (
            f"TensorLoader({self.num_examples} examples, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, X={tuple(self.X.shape[1:])} {self.X.dtype})"
        )


def load_data(
    dataset: str = "fashion",
    batch_size: int = 256,
    *,
    size: int = 28,
    resize: bool = False,
    normalize: str | tuple[float, float] | None = None,
    val_size: int = 0,
    seed: int = 0,
    root: str | Path | None = None,
    device: str | torch.device | None = None,
    train_subset: int | None = None,
) -> tuple[TensorLoader, ...]:
    """Training and test loaders (and a validation loader when ``val_size > 0``).

    The defaults match d2l's ``load_data_fashion_mnist(256)``: 28x28 pixels in [0, 1],
    the training set shuffled, the test set in order. ``size=32`` pads to the paper's
    32x32 input (``resize=True`` resizes instead, as the reproduction project does).

    Args:
        dataset: ``"mnist"`` or ``"fashion"``.
        batch_size: examples per batch (the last batch may be smaller).
        size, resize, normalize: see :class:`Preprocess`.
        val_size: hold out this many training images (a seeded random choice) as a
            validation set; returns ``(train, val, test)``.
        seed: seeds shuffling and the validation split.
        root: dataset cache (default :func:`default_root`).
        device: put the tensors on this device once (e.g. ``"cuda"``).
        train_subset: keep only the first ``n`` training images (after the split):
            for quick live demos.

    Returns:
        ``(train_iter, test_iter)`` or ``(train_iter, val_iter, test_iter)``.
    """
    dataset = _canonical(dataset)
    prep = Preprocess(size=size, resize=resize, normalize=normalize)
    Xtr, ytr = load_split(dataset, True, root)
    Xte, yte = load_split(dataset, False, root)
    Xtr, Xte = prep(Xtr, dataset), prep(Xte, dataset)
    loaders: list[TensorLoader] = []
    if val_size:
        if not 0 < val_size < len(Xtr):
            raise ValueError(f"val_size must be between 1 and {len(Xtr) - 1}, got {val_size}")
        perm = torch.randperm(len(Xtr), generator=torch.Generator().manual_seed(seed))
        val_idx, tr_idx = perm[:val_size].sort().values, perm[val_size:].sort().values
        Xval, yval = Xtr[val_idx], ytr[val_idx]
        Xtr, ytr = Xtr[tr_idx], ytr[tr_idx]
    if train_subset is not None:
        Xtr, ytr = Xtr[:train_subset], ytr[:train_subset]
    loaders.append(TensorLoader(Xtr, ytr, batch_size, shuffle=True, seed=seed, device=device))
    if val_size:
        loaders.append(TensorLoader(Xval, yval, batch_size, device=device))
    loaders.append(TensorLoader(Xte, yte, batch_size, device=device))
    return tuple(loaders)


#: Class names, index = label.
LABELS: dict[str, Sequence[str]] = {
    "mnist": [str(i) for i in range(10)],
    "fashion": ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"],
}
