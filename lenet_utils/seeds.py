"""Several seeds of one network trained as one model: :class:`SeedStack`.

Small batches spend their time in Python and dispatch overhead, not in arithmetic. Training S
seeds of one configuration *together* pays that overhead once per step instead of S times:
``torch.func.stack_module_state`` stacks the seeds' weights along a new leading dimension,
and ``torch.func.vmap`` over ``torch.func.functional_call`` runs them side by side. The seeds
share no parameter, so the gradient of the *sum* of their losses, with respect to one seed's
weights, is that of its own loss; SGD, Adagrad and Adam act element by element, so one
optimiser over the stacked tensors equals one optimiser per seed. The result is each seed's
own run, up to floating-point rounding. The loop is the book's one loop
(:func:`lenet_utils.engine.run`): every metric simply gains a leading seed dimension.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

__all__ = ["SeedStack", "seed_batches", "stacked_cross_entropy"]


class SeedStack:
    """S networks of one architecture, called as one:
    ``(S, B, ...) -> (S, B, 10)``.

    A batch with no seed dimension, ``(B, ...)``, is given to every seed
    (evaluation). :attr:`params` are the stacked leaf tensors the optimiser
    steps; :meth:`unstack` gives seed ``i``'s ``state_dict``.
    """

    def __init__(self, nets: Sequence[nn.Module]) -> None:
        if not nets:
            raise ValueError("a SeedStack needs at least one network")
        # each stacked tensor: (S, *shape)
        self.params, self.buffers = stack_module_state(list(nets))
        self.seeds = len(nets)
        skeleton = copy.deepcopy(nets[0]).to("meta")

        def forward(
            p: dict[str, torch.Tensor],
            b: dict[str, torch.Tensor],
            x: torch.Tensor,
        ) -> torch.Tensor:
            return functional_call(skeleton, (p, b), (x,))

        self._per_seed = vmap(forward)  # each seed its own batch
        # one batch for every seed
        self._shared = vmap(forward, in_dims=(0, 0, None))

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        if X.dim() == 5:
            return self._per_seed(self.params, self.buffers, X)  # (S, B, 10)
        return self._shared(self.params, self.buffers, X)  # (S, B, 10)

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def unstack(self, i: int) -> dict[str, torch.Tensor]:
        """Seed ``i``'s weights, as its own network's ``state_dict`` would
        hold them."""
        return {
            k: v[i].detach().clone()
            for k, v in {**self.params, **self.buffers}.items()
        }


def stacked_cross_entropy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(S, B, 10)`` scores and ``(S, B)`` labels -> ``(S,)`` batch-mean cross-entropies."""
    return vmap(nn.functional.cross_entropy)(out, y)


def seed_batches(
    X: torch.Tensor,
    y: torch.Tensor,
    seeds: Sequence[int],
    batch_size: int,
    epoch: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Epoch ``epoch``'s (1-based) training batches for every seed at once, ``(S, b, ...)``.

    Seed ``s`` sees exactly the order ``TensorLoader(X, y, batch_size, shuffle=True, seed=s)``
    gives in that epoch: ``randperm`` with a generator seeded ``s + epoch - 1``.
    """
    n = len(X)
    orders = torch.stack(
        [
            torch.randperm(
                n, generator=torch.Generator().manual_seed(s + epoch - 1)
            )
            for s in seeds
        ]
    )
    for start in range(0, n, batch_size):
        idx = orders[:, start : start + batch_size]  # (S, b)
        yield X[idx], y[idx]  # (S, b, 1, 28, 28), (S, b)
