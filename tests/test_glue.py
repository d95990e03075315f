"""lenet_utils.glue: MyST-NB's glue where it is installed, a stand-in where it is not (Colab)."""

from __future__ import annotations

import sys

import pytest

from lenet_utils import glue as glue_mod


def _displayed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple, dict]]:
    calls: list[tuple[tuple, dict]] = []
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: calls.append((a, k)))
    return calls


def test_with_myst_nb_the_value_is_stored_under_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _displayed(monkeypatch)
    import myst_nb.ext.glue

    monkeypatch.setattr(myst_nb.ext.glue, "ipy_display", lambda *a, **k: calls.append((a, k)))
    glue_mod.glue("acc", 0.91, display=False)
    (bundle,), kwargs = calls[0]
    assert kwargs["metadata"]["scrapbook"]["name"] == "acc"
    assert bundle["application/papermill.record/text/plain"] == "0.91"  # hidden: prose only


def test_without_myst_nb_it_shows_the_value_or_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # importing it raises ImportError
    with pytest.raises(ImportError):
        import myst_nb  # noqa: F401
    calls = _displayed(monkeypatch)
    glue_mod.glue("acc", 0.91, display=False)
    assert calls == []
    glue_mod.glue("acc", 0.91)
    assert calls == [((0.91,), {})]
