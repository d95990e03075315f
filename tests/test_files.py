"""lenet_utils.files: atomic writes leave either the old file or the new one, never a part."""

import pickle
from pathlib import Path

import pytest
import torch

from lenet_utils import checkpoint
from lenet_utils.files import atomic_write


def test_atomic_write_text_and_bytes(tmp_path: Path) -> None:
    p = atomic_write(tmp_path / "sub" / "a.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n" and p.stat().st_mode & 0o044
    atomic_write(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    assert [x.name for x in p.parent.iterdir()] == ["a.txt"]


class Unpicklable:
    def __reduce__(self) -> None:
        raise pickle.PicklingError("refused (test)")


def test_failed_checkpoint_save_keeps_old_file_and_leaves_no_part(tmp_path: Path) -> None:
    p = checkpoint.save(tmp_path / "ckpt.pt", {"w": torch.ones(3)}, kind="fit", config={})
    with pytest.raises(pickle.PicklingError, match="refused"):
        checkpoint.save(p, {"w": torch.ones(3)}, kind="fit", config={}, metrics={"f": Unpicklable()})
    assert torch.equal(checkpoint.load(p)["model"]["w"], torch.ones(3))
    assert [x.name for x in tmp_path.iterdir()] == ["ckpt.pt"]
