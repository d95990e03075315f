"""Figures shared by the chapters. Each function draws on matplotlib and returns the figure.

Chapters call these so that the live (ipywidgets) and static (HTML) faces of an explorer
draw the same picture. Importing this module makes IPython show figures through
:func:`lenet_utils.style.png`, which records each figure's smallest text for the site's test.

One module per kind of figure, every public function re-exported here (``viz.plot_runs``):
:mod:`~lenet_utils.viz.images` (images, feature maps, RBF prototypes),
:mod:`~lenet_utils.viz.convolution` (chapter 2: convolution and pooling),
:mod:`~lenet_utils.viz.architecture` (chapter 3: LeNet-5 layer by layer) and
:mod:`~lenet_utils.viz.results` (chapters 4-6: training curves, the paper's numbers, ablations).
"""

from __future__ import annotations

from .. import style
from .architecture import draw_connection_table, draw_lenet_architecture, plot_lenet_activations
from .convolution import (
    plot_conv_geometry,
    plot_conv_step,
    plot_multichannel,
    plot_pooling,
    plot_receptive_fields,
)
from .images import show_images, show_maps, show_rbf_prototypes
from .results import (
    ablation_points,
    plot_ablation,
    plot_effects,
    plot_epoch_curves,
    plot_paper_curves,
    plot_runs,
)

__all__ = [
    "ablation_points",
    "draw_connection_table",
    "draw_lenet_architecture",
    "plot_ablation",
    "plot_conv_geometry",
    "plot_conv_step",
    "plot_effects",
    "plot_epoch_curves",
    "plot_lenet_activations",
    "plot_multichannel",
    "plot_paper_curves",
    "plot_pooling",
    "plot_receptive_fields",
    "plot_runs",
    "show_images",
    "show_maps",
    "show_rbf_prototypes",
]


style.use()
