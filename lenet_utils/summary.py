"""Layer tables computed from a model and a real forward pass: shapes, parameters, connections.

LeCun et al. 1998 describe LeNet-5 layer by layer (§II.B): for each layer its feature maps,
its *trainable parameters* and its *connections*. :func:`summarize` recomputes those
numbers from the actual ``nn.Module`` objects. It hooks every leaf module, runs one
forward pass, records what each module received and returned, and groups the calls into
the paper's layers: a convolution, a pooling/subsampling or a fully connected module starts a
layer; activations (and dropout) join the layer before them; a ``Flatten`` joins the layer
after it.

What is counted, per input example:

* **trainable parameters** — ``sum(p.numel() for p in m.parameters() if p.requires_grad)``
  over the layer's modules, each parameter once even when a module is called several times
  (``LeNet5Paper`` calls one ``ScaledTanh`` after every layer);
* **fixed weights** — floating-point buffers and frozen parameters (the 840 RBF prototypes);
* **connections** — the multiply–add links a forward pass performs, a bias counting as one
  link (the paper's convention, §II.B):

  =====================  ===========================================================
  module                 connections
  =====================  ===========================================================
  ``Conv2d``             output units x (fan-in + 1), fan-in = in/groups x k x k
  ``SparseConv2d``       per output map: units x (connected maps x k x k + 1)
  ``Subsampling``        units x (k x k + 1): four inputs, one coefficient, one bias
  ``AvgPool2d``/``Max``  units x k x k (no weight, no bias)
  ``Linear``             out x (in + 1)
  ``RBFOutput``          classes x in (the fixed prototypes; Eq. 7)
  activations, reshape   0
  =====================  ===========================================================

Departure from the paper: none in the counts. Padding zeros count as connections (they are
multiplied like any input), which is what makes d2l's padded C1 have the paper's 122,304.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .layers import C3_TABLE, RBFOutput, SparseConv2d, Subsampling

if TYPE_CHECKING:  # pandas is a book dependency, not a package one
    import pandas as pd

__all__ = ["Call", "LayerInfo", "ModelSummary", "module_counts", "print_shapes", "record_calls", "summarize"]

Shape = tuple[int, ...]

_CONV = (nn.Conv2d, SparseConv2d)
_POOL = (Subsampling, nn.AvgPool2d, nn.MaxPool2d)
_LINEAR = (nn.Linear,)
_RBF = (RBFOutput,)
_MAIN = _CONV + _POOL + _LINEAR + _RBF
_PREFIX = {"conv": "C", "pool": "S", "linear": "F", "rbf": "F"}


def _kind(m: nn.Module) -> str:
    """``conv``, ``pool``, ``linear``, ``rbf``, ``reshape`` (starts no layer, joins the next),
    ``other`` (has its own parameters: starts a layer) or ``act`` (joins the previous layer)."""
    if isinstance(m, _CONV):
        return "conv"
    if isinstance(m, _POOL):
        return "pool"
    if isinstance(m, _LINEAR):
        return "linear"
    if isinstance(m, _RBF):
        return "rbf"
    if isinstance(m, (nn.Flatten, nn.Unflatten)):
        return "reshape"
    if any(True for _ in m.parameters(recurse=False)):
        return "other"
    return "act"


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _units(shape: Shape) -> int:
    """Units of one example: the product of all but the batch dimension."""
    n = 1
    for s in shape[1:]:
        n *= s
    return n


def _maps(shape: Shape) -> str:
    """``6@28x28`` for a (B, C, H, W) shape, ``84`` for (B, F)."""
    if len(shape) == 4:
        return f"{shape[1]}@{shape[2]}x{shape[3]}"
    return "x".join(str(s) for s in shape[1:])


def _describe(m: nn.Module) -> str:
    """A short constructor-like name: ``Conv2d(1, 6, 5, padding=2)``, ``Subsampling(6)``."""
    if isinstance(m, nn.Conv2d):
        k = _pair(m.kernel_size)
        ks = str(k[0]) if k[0] == k[1] else f"{k[0]}x{k[1]}"
        extra = ""
        if _pair(m.padding) != (0, 0):
            p = _pair(m.padding)
            extra += f", padding={p[0] if p[0] == p[1] else p}"
        if _pair(m.stride) != (1, 1):
            s = _pair(m.stride)
            extra += f", stride={s[0] if s[0] == s[1] else s}"
        return f"Conv2d({m.in_channels}, {m.out_channels}, {ks}{extra})"
    if isinstance(m, SparseConv2d):
        table = "Table I" if m.table == C3_TABLE else "table"
        return f"SparseConv2d({m.in_channels}, {m.out_channels}, {m.kernel_size}, {table})"
    if isinstance(m, Subsampling):
        return f"Subsampling({m.channels})"
    if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
        k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
        ks = str(k[0]) if k[0] == k[1] else f"{k[0]}x{k[1]}"
        return f"{type(m).__name__}({ks})" if k == s else f"{type(m).__name__}({ks}, stride={s[0]})"
    if isinstance(m, nn.Linear):
        return f"Linear({m.in_features}, {m.out_features})"
    if isinstance(m, RBFOutput):
        n, d = m.prototypes.shape
        return f"RBFOutput({d}, {n})"
    return type(m).__name__


def _kernel(m: nn.Module) -> str:
    """The window a unit sees, with padding and stride when they are not the defaults."""
    if isinstance(m, nn.Conv2d):
        k, p, s = _pair(m.kernel_size), _pair(m.padding), _pair(m.stride)
        text = f"{k[0]}x{k[1]}"
        if p != (0, 0):
            text += f", pad {p[0]}"
        if s != (1, 1):
            text += f", stride {s[0]}"
        return text
    if isinstance(m, SparseConv2d):
        k = m.kernel_size
        return f"{k}x{k}, Table I" if m.table == C3_TABLE else f"{k}x{k}, sparse"
    if isinstance(m, Subsampling):
        return f"{m.kernel_size}x{m.kernel_size}, stride {m.kernel_size}"
    if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
        k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
        return f"{k[0]}x{k[1]}, stride {s[0]}"
    return "—"


def module_counts(m: nn.Module, in_shape: Shape, out_shape: Shape) -> tuple[int, str, str]:
    """``(connections, parameter formula, connection formula)`` of one call of a leaf module.

    ``in_shape`` / ``out_shape`` are the shapes it received and returned (batch first);
    connections are per example. The formulas are the arithmetic written out, with the
    module's own numbers, e.g. ``"6 × (1·5·5 + 1)"`` for the paper's C1.
    """
    if isinstance(m, nn.Conv2d):
        kh, kw = _pair(m.kernel_size)
        cin = m.in_channels // m.groups
        bias = 1 if m.bias is not None else 0
        fan_in = cin * kh * kw
        c, h, w = out_shape[1:]
        b = " + 1" if bias else ""
        return (
            _units(out_shape) * (fan_in + bias),
            f"{m.out_channels} × ({cin}·{kh}·{kw}{b})",
            f"{c}·{h}·{w} × ({cin}·{kh}·{kw}{b})",
        )
    if isinstance(m, SparseConv2d):
        h, w = out_shape[2:]
        k = m.kernel_size
        per_position = sum(len(t) * k * k + 1 for t in m.table)
        return (
            h * w * per_position,
            f"{len(m.out_index)}·{k}·{k} + {m.out_channels}",
            f"{h}·{w} × ({len(m.out_index)}·{k}·{k} + {m.out_channels})",
        )
    if isinstance(m, Subsampling):
        k = m.kernel_size
        c, h, w = out_shape[1:]
        return _units(out_shape) * (k * k + 1), f"2 × {m.channels}", f"{c}·{h}·{w} × ({k}·{k} + 1)"
    if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
        kh, kw = _pair(m.kernel_size)
        c, h, w = out_shape[1:]
        return _units(out_shape) * kh * kw, "0", f"{c}·{h}·{w} × {kh}·{kw}"
    if isinstance(m, nn.Linear):
        bias = 1 if m.bias is not None else 0
        b = " + 1" if bias else ""
        text = f"{m.out_features} × ({m.in_features}{b})"
        return m.out_features * (m.in_features + bias), text, text
    if isinstance(m, RBFOutput):
        n, d = m.prototypes.shape
        return n * d, "0", f"{n} × {d}"
    return 0, "0", "0"


@dataclass
class LayerInfo:
    """One layer of the paper's kind: a main module with its activation (and reshape).

    Attributes:
        name: ``C1``, ``S2``, ... (the attribute name when the model names its layers,
            otherwise generated: C = convolution, S = subsampling/pooling, F = fully
            connected, numbered by position; the last layer is ``output``).
        modules: the modules called, in order, e.g. ``Conv2d(1, 6, 5) → ScaledTanh``.
        input_shape, output_shape: shapes received by the first module and returned by the last.
        kernel: the window of the main module (``5x5``, ``2x2, stride 2``, ``—``).
        params: trainable parameters.
        fixed: fixed weights (floating-point buffers, frozen parameters).
        connections: multiply–add links per example, biases included.
        params_formula, connections_formula: the arithmetic behind the two counts.
        kind: what the main module does: ``conv``, ``pool``, ``linear``, ``rbf`` (or
            ``other``/``act`` for modules this table does not know).
    """

    name: str
    modules: str
    input_shape: Shape
    output_shape: Shape
    kernel: str
    params: int
    fixed: int
    connections: int
    params_formula: str = ""
    connections_formula: str = ""
    kind: str = ""

    @property
    def maps(self) -> str:
        """The output as the paper writes it: ``6@28x28`` or ``84``."""
        return _maps(self.output_shape)


@dataclass
class ModelSummary:
    """The layer table of a model (see :func:`summarize`); prints as text, renders as a table."""

    model: str
    input_shape: Shape
    layers: list[LayerInfo] = field(default_factory=list)

    @property
    def params(self) -> int:
        """Trainable parameters of the whole model."""
        return sum(r.params for r in self.layers)

    @property
    def fixed(self) -> int:
        """Fixed weights of the whole model."""
        return sum(r.fixed for r in self.layers)

    @property
    def connections(self) -> int:
        """Connections of the whole model, per example."""
        return sum(r.connections for r in self.layers)

    def __getitem__(self, name: str) -> LayerInfo:
        for r in self.layers:
            if r.name == name:
                return r
        raise KeyError(f"no layer {name!r}; layers are {[r.name for r in self.layers]}")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def to_frame(self, *, formulas: bool = False, total: bool = True) -> pd.DataFrame:
        """A pandas DataFrame, one row per layer (and a total row), indexed by layer name.

        Shapes are written as the paper does, without the batch: ``6@28x28``, ``84``.

        ``formulas=True`` adds the arithmetic behind the parameter and connection counts.
        """
        import pandas as pd

        rows = []
        for r in self.layers:
            row: dict[str, Any] = {
                "layer": r.name,
                "modules": r.modules,
                "input": _maps(r.input_shape),
                "output": _maps(r.output_shape),
                "kernel": r.kernel,
                "params": r.params,
                "fixed": r.fixed,
                "connections": r.connections,
            }
            if formulas:
                row["params = "] = r.params_formula
                row["connections = "] = r.connections_formula
            rows.append(row)
        if total:
            last = {"layer": "total", "modules": "", "input": _maps(self.input_shape), "output": "", "kernel": ""}
            last.update({"params": self.params, "fixed": self.fixed, "connections": self.connections})
            if formulas:
                last.update({"params = ": "", "connections = ": ""})
            rows.append(last)
        return pd.DataFrame(rows).set_index("layer")

    def __str__(self) -> str:
        header = ("layer", "modules", "output", "kernel", "params", "fixed", "connections")
        body = [
            (r.name, r.modules, _maps(r.output_shape), r.kernel, f"{r.params:,}", f"{r.fixed:,}", f"{r.connections:,}")
            for r in self.layers
        ]
        body.append(("total", "", "", "", f"{self.params:,}", f"{self.fixed:,}", f"{self.connections:,}"))
        widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
        right = {4, 5, 6}

        def fmt(row: Sequence[str]) -> str:
            pairs = enumerate(zip(row, widths, strict=True))
            cells = [f"{c:>{w}}" if i in right else f"{c:<{w}}" for i, (c, w) in pairs]
            return "  ".join(cells).rstrip()

        rule = "-" * len(fmt(header))
        lines = [f"{self.model}, input {self.input_shape}", fmt(header), rule]
        lines += [fmt(b) for b in body[:-1]] + [rule, fmt(body[-1])]
        return "\n".join(lines)

    def _repr_html_(self) -> str | None:
        try:
            return self.to_frame()._repr_html_()
        except ImportError:  # no pandas: Jupyter falls back to the text
            return None


@dataclass
class Call:
    """One call of a hooked module during :func:`record_calls`: its name in the model, the
    module, and the shapes it received and returned (batch first)."""

    qualname: str
    module: nn.Module
    in_shape: Shape
    out_shape: Shape


def record_calls(
    model: nn.Module, x: torch.Tensor, *, select: tuple[type[nn.Module], ...] | None = None
) -> list[Call]:
    """Run ``model(x)`` once (eval mode, no gradients) with a forward hook on every leaf
    module, or on every module of the ``select`` types; the calls in order, with their
    input and output shapes. The model's mode is restored and the hooks removed."""
    calls: list[Call] = []
    names = {id(m): n for n, m in model.named_modules()}

    def hook(m: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        first = next((t for t in inputs if isinstance(t, torch.Tensor)), None)
        if first is None or not isinstance(output, torch.Tensor):
            raise TypeError(f"summarize handles tensor-in, tensor-out modules; {type(m).__name__} is not one")
        calls.append(Call(names.get(id(m), type(m).__name__), m, tuple(first.shape), tuple(output.shape)))

    if select is None:
        hooked = [m for m in model.modules() if not any(True for _ in m.children())]
    else:
        hooked = [m for m in model.modules() if isinstance(m, select)]
    handles = [m.register_forward_hook(hook) for m in hooked]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return calls


def _group_calls(calls: list[Call]) -> list[list[Call]]:
    """Calls grouped into layers: main modules start a layer, activations join the previous one,
    reshapes (Flatten) wait for the next one."""
    groups: list[list[Call]] = []
    pending: list[Call] = []
    for call in calls:
        kind = _kind(call.module)
        if kind == "reshape":
            pending.append(call)
        elif kind == "act" and groups and not pending:
            groups[-1].append(call)
        elif kind == "act":
            pending.append(call)
        else:
            groups.append([*pending, call])
            pending = []
    if pending:
        if groups:
            groups[-1].extend(pending)
        else:
            groups.append(pending)
    return groups


def _count_weights(group: list[Call], seen: set[int]) -> tuple[int, int]:
    """(trainable, fixed) numbers of the group's weights not counted before (shared ones once)."""
    params = fixed = 0
    for c in group:
        for p in c.module.parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            if p.requires_grad:
                params += p.numel()
            else:
                fixed += p.numel()
        for b in c.module.buffers(recurse=False):
            if id(b) not in seen and b.is_floating_point():
                seen.add(id(b))
                fixed += b.numel()
    return params, fixed


def _layer_name(main: Call, kind: str, position: int, count: int) -> str:
    """The last linear / RBF layer is ``output``; named submodules keep their name; others C1, S2, F5..."""
    if position == count and kind in ("linear", "rbf"):
        return "output"
    if main.qualname and not main.qualname.replace(".", "").isdigit():
        return main.qualname
    return f"{_PREFIX.get(kind, 'L')}{position}"


def summarize(
    model: nn.Module,
    input_size: Sequence[int] | torch.Tensor = (1, 1, 32, 32),
    *,
    name: str | None = None,
) -> ModelSummary:
    """The per-layer table of ``model``: shapes, kernel, parameters, fixed weights, connections.

    Args:
        model: any network of leaf modules (the four LeNets of :mod:`lenet_utils.models`).
        input_size: the input's shape (batch first), or an input tensor. Use
            ``(1, 1, 28, 28)`` for d2l's LeNet and ``(1, 1, 32, 32)`` for the others.
        name: the model's name in the printed title (default: its class name).

    Raises:
        ValueError: the model does not accept an input of this shape; the message says which
            layer failed and what it got.

    Example:
        >>> from lenet_utils import models, summary
        >>> s = summary.summarize(models.LeNet5Paper())
        >>> s.params, s.connections
        (60000, 340908)
    """
    if isinstance(input_size, torch.Tensor):
        x = input_size
    else:
        shape = tuple(int(s) for s in input_size)
        if len(shape) != 4:
            raise ValueError(f"input_size must be (B, C, H, W), e.g. (1, 1, 32, 32); got {shape}")
        x = torch.zeros(shape)
    title = name or type(model).__name__
    try:
        calls = record_calls(model, x)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"{title} does not accept an input of shape {tuple(x.shape)}: {err}. "
            "Give the input size the model expects (d2l's LeNet: (B, 1, 28, 28); the paper's and "
            "the reproduction project's: (B, 1, 32, 32))."
        ) from err

    groups = _group_calls(calls)
    seen: set[int] = set()
    layers: list[LayerInfo] = []
    for position, group in enumerate(groups, start=1):
        main = next((c for c in group if _kind(c.module) not in ("act", "reshape")), group[0])
        kind = _kind(main.module)
        params, fixed = _count_weights(group, seen)
        connections, p_formula, c_formula = module_counts(main.module, main.in_shape, main.out_shape)
        layers.append(
            LayerInfo(
                name=_layer_name(main, kind, position, len(groups)),
                modules=" → ".join(_describe(c.module) for c in group),
                input_shape=group[0].in_shape,
                output_shape=group[-1].out_shape,
                kernel=_kernel(main.module),
                params=params,
                fixed=fixed,
                connections=connections,
                params_formula=p_formula,
                connections_formula=c_formula,
                kind=kind,
            )
        )
    return ModelSummary(model=title, input_shape=tuple(x.shape), layers=layers)


def print_shapes(
    model: nn.Module,
    input_size: Sequence[int] | torch.Tensor = (1, 1, 32, 32),
    *,
    per_module: bool = False,
    name: str | None = None,
    file: Callable[[str], Any] = print,
) -> None:
    """Print the shape walk of one forward pass.

    ``per_module=False`` prints one line per layer (``C1  Conv2d(1, 6, 5) → ScaledTanh
    (1, 6, 28, 28)``); ``per_module=True`` prints one line per module call, the way d2l
    walks its ``nn.Sequential``.
    """
    s = summarize(model, input_size, name=name)
    file(f"{s.model}: input {s.input_shape}")
    if per_module:
        x = input_size if isinstance(input_size, torch.Tensor) else torch.zeros(tuple(input_size))
        calls = record_calls(model, x)
        width = max(len(_describe(c.module)) for c in calls)
        for c in calls:
            file(f"  {_describe(c.module):<{width}}  output shape: {c.out_shape}")
        return
    wn = max(len(r.name) for r in s.layers)
    wm = max(len(r.modules) for r in s.layers)
    for r in s.layers:
        file(f"  {r.name:<{wn}}  {r.modules:<{wm}}  {r.output_shape!s:<16} {r.maps}")
