"""The optimiser loop: L-BFGS or Adam over the pixels of the generated image.

The loop knows nothing of networks or files: it is given an image and an objective (a function
that returns the weighted loss terms of an image and leaves their summed gradient in the image's
``.grad``, see :class:`impasto.objective.Objective`), and it reports every step through a
callback. It never prints.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from impasto.errors import ImpastoError

LossFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]
# The terms of x (detached), with the gradient of their sum left in x.grad.
ObjectiveFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]

# Early stop: the relative change of the loss must stay below the tolerance this many steps in a
# row (L-BFGS without line search makes the odd tiny step, which alone must not end a run).
PATIENCE = 20
# L-BFGS undoes a step after which the loss is more than this many times what it was: a real
# blow-up (at 500 px with --style-weight 20, 5 -> 2197 in one step), not the ordinary spikes of
# unit steps without line search (1.8 -> 3.0 right after a change of scale), for which dropping
# the history would throw away what L-BFGS has learnt.
BLOW_UP = 4.0


@dataclass(frozen=True)
class Progress:
    """One step of a run, as reported to ``on_progress``.

    ``step`` counts from 1 across all the scales of a run, up to ``total_steps``; ``scale`` of
    ``scales`` tells which size the run is at. ``losses`` holds each weighted term (content, style, tv) and ``total`` their sum, measured on
    the image as it was before this step's update. ``image`` is the current image, (1, 3, H, W)
    in [0, 1]; it is the live tensor, so clone it to keep it past the callback.
    """

    step: int
    total_steps: int
    losses: dict[str, float]
    total: float
    elapsed: float
    image: torch.Tensor | None = field(default=None, repr=False)
    scale: int = 1  # which scale of a coarse-to-fine run (1 = the smallest)
    scales: int = 1
    tiles: int = 0  # how many tiles each step of this scale is taken in (0: the whole image)
    style_weight: float | None = None  # the run's style weight (--balance auto: this pair's)

    def replace(self, **changes: Any) -> Progress:
        return dataclasses.replace(self, **changes)


ProgressFn = Callable[[Progress], None]


class BoxLBFGS:
    """L-BFGS over pixels kept in [0, 1], one loss evaluation per step, no line search.

    ``torch.optim.LBFGS`` records the step it meant to take (direction x step length); once a
    clamp cuts that step short, its curvature pairs describe moves that never happened and it
    stalls against the bounds. Here the pairs are made from the real change of the pixels and
    of the projected gradient (a pixel held at a bound whose descent points outward does not
    count), so bright and dark regions converge like the rest. Steps are unit length, as in
    Gatys et al.'s code, with the usual initial scaling gamma = s.y / y.y.

    Besides its history it keeps two image-sized vectors (the last image, and the next pair's y
    less the next gradient), and a step allocates nothing else as large: the direction is made
    in the gradient's own buffer, and each new pair in the buffers of those two. At print size
    (4096 x 4096 px) each such vector is 201 MB.
    """

    def __init__(self, history_size: int = 50) -> None:
        self.history_size = history_size
        self.s: list[torch.Tensor] = []
        self.y: list[torch.Tensor] = []
        self.rho: list[float] = []
        self.prev_x: torch.Tensor | None = None
        self.next_y: torch.Tensor | None = None  # minus the last projected gradient
        self.prev_blocked: torch.Tensor | None = None
        self.prev_loss: float | None = None
        self.restarts = 0

    @property
    def prev_g(self) -> torch.Tensor | None:
        """The last projected gradient."""
        return None if self.next_y is None else -self.next_y

    def step(
        self,
        x: torch.Tensor,
        grad: torch.Tensor,
        loss: float | None = None,
        *,
        reuse_grad: bool = False,
    ) -> None:
        """Move ``x`` (in place) given its gradient (and its loss, for the blow-up guard).

        ``reuse_grad``: the step may work in ``grad``'s memory, which then holds the step's
        direction (``optimize`` does that with ``x.grad``, dropped before the next evaluation).
        """
        if loss is not None and self.prev_loss is not None and loss > BLOW_UP * self.prev_loss:
            # The last step made things far worse (unit steps with no line search can, when the
            # curvature pairs are poor, e.g. right after a jump in scale): undo it and start
            # the history afresh, with the small first step, from where we were.
            assert self.prev_x is not None and self.prev_g is not None
            with torch.no_grad():
                x.copy_(self.prev_x.view_as(x))
            grad, loss = self.prev_g.view_as(x), self.prev_loss
            self.s, self.y, self.rho, self.prev_x, self.next_y, self.prev_blocked = (
                [],
                [],
                [],
                None,
                None,
                None,
            )
            self.restarts += 1
        self.prev_loss = loss
        g = grad.detach().reshape(-1).float()
        flat = x.detach().flatten()
        blocked = ((flat <= 0) & (g > 0)) | ((flat >= 1) & (g < 0))
        g = g.masked_fill_(blocked, 0.0) if reuse_grad else g.masked_fill(blocked, 0.0)
        if self.prev_x is not None and self.next_y is not None:
            # Curvature only from pixels free at both ends of the move: the clamp cut the others'
            # steps short, and their gradients were zeroed, which says nothing of the curvature.
            held = blocked | self.prev_blocked
            s = self.prev_x.neg_().add_(flat).masked_fill_(held, 0.0)  # x - prev_x, in place
            y = self.next_y.add_(g).masked_fill_(held, 0.0)  # g - prev_g, in place
            self.prev_x = self.next_y = None
            sy = float(torch.dot(s, y))
            if sy > 1e-10:
                if len(self.s) >= self.history_size:  # make room first: no pair too many alive
                    del self.s[0], self.y[0], self.rho[0]
                self.s.append(s), self.y.append(y), self.rho.append(1.0 / sy)
            del s, y
        self.next_y, self.prev_x, self.prev_blocked = g.neg(), flat.clone(), blocked
        # Two-loop recursion, d = -H g, in the gradient's buffer (its values are kept above).
        q = g
        alphas = []
        for s, y, rho in zip(reversed(self.s), reversed(self.y), reversed(self.rho)):
            alpha = rho * float(torch.dot(s, q))
            q.add_(y, alpha=-alpha)
            alphas.append(alpha)
        if self.s:
            q.mul_(
                float(torch.dot(self.s[-1], self.y[-1])) / float(torch.dot(self.y[-1], self.y[-1]))
            )
        else:
            q.mul_(min(1.0, 1.0 / max(float(self.next_y.abs().sum()), 1e-12)))
        for s, y, rho, alpha in zip(self.s, self.y, self.rho, reversed(alphas)):
            beta = rho * float(torch.dot(y, q))
            q.add_(s, alpha=alpha - beta)
        with torch.no_grad():
            x.sub_(q.view_as(x).to(x.dtype)).clamp_(0, 1)

    def state_dict(self) -> dict[str, Any]:
        """Everything the next step depends on, as tensors (for a checkpoint). The history is
        a list of the pairs themselves, not a copy stacked into one tensor."""
        if self.prev_x is None:
            return {}
        assert self.prev_g is not None and self.prev_blocked is not None
        state: dict[str, Any] = {
            "prev_x": self.prev_x,
            "prev_g": self.prev_g,
            "prev_blocked": self.prev_blocked,
        }
        if self.prev_loss is not None:
            state["prev_loss"] = torch.tensor(self.prev_loss, dtype=torch.float64)
        if self.s:
            state |= {
                "s": list(self.s),
                "y": list(self.y),
                "rho": torch.tensor(self.rho, dtype=torch.float64),
            }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        prev_g = state.get("prev_g")
        self.prev_x, self.prev_blocked = state.get("prev_x"), state.get("prev_blocked")
        self.next_y = None if prev_g is None else -prev_g
        # Checkpoints written before the history was a list hold it stacked in one tensor.
        self.s = list(state["s"]) if "s" in state else []
        self.y = list(state["y"]) if "y" in state else []
        self.rho = state["rho"].tolist() if "rho" in state else []
        self.prev_loss = float(state["prev_loss"]) if "prev_loss" in state else None


CheckpointFn = Callable[[dict[str, Any]], None]


def differentiate(loss_fn: LossFn) -> ObjectiveFn:
    """The objective of a plain loss function (terms with their graph): sum, then backward."""

    def objective(x: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = loss_fn(x)
        sum(terms.values(), torch.zeros((), device=x.device)).backward()
        return {k: v.detach() for k, v in terms.items()}

    return objective


def optimize(
    image: torch.Tensor,
    objective: ObjectiveFn,
    *,
    optimizer: str = "lbfgs",
    iterations: int = 300,
    lr: float = 10.0,
    tolerance: float = 0.0,
    history_size: int = 50,
    on_progress: ProgressFn | None = None,
    on_checkpoint: CheckpointFn | None = None,
    checkpoint_every: int = 0,
    resume: dict[str, Any] | None = None,
) -> torch.Tensor:
    """Minimise the sum of ``objective(x)``'s terms over the pixels ``x``, kept in [0, 1].

    ``lr`` is Adam's step in 8-bit levels (0-255); L-BFGS ignores it. Every step is one loss
    evaluation, reported to ``on_progress`` (the losses are those of the image before the step's
    update). Returns the final image (detached).

    Every ``checkpoint_every`` steps, and when interrupted (KeyboardInterrupt) between two
    steps' updates, ``on_checkpoint`` receives the loop's whole state: the image, the step, the
    optimiser's state and the early-stop counters. Given back as ``resume``, that state continues
    the run exactly where it was, to the same pixels an uninterrupted run reaches.

    Shape: image (1, 3, H, W) -> (1, 3, H, W).
    """
    x = (
        image.detach()
        .clone(memory_format=torch.contiguous_format)
        .clamp_(0, 1)
        .requires_grad_(True)
    )
    del image  # a start the caller does not keep is freed now, not at the end of the run
    if optimizer == "lbfgs":
        lbfgs = BoxLBFGS(history_size)
    elif optimizer == "adam":
        adam = torch.optim.Adam([x], lr=lr / 255.0)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}")

    first, previous, calm_steps, before = 1, math.nan, 0, 0.0
    if resume is not None:
        with torch.no_grad():
            x.copy_(resume["image"])
        first, previous, calm_steps, before = (
            resume["step"] + 1,
            resume["previous"],
            resume["calm_steps"],
            resume["elapsed"],
        )
        if optimizer == "lbfgs":
            lbfgs.load_state_dict(resume["optimizer"])
        else:
            adam.load_state_dict(resume["optimizer"])

    start = time.perf_counter() - before
    done = first - 1  # the last step whose update is complete
    updating = False  # x and the optimiser are consistent except inside an update

    def state() -> dict[str, Any]:
        return {
            "image": x.detach().clone(),
            "step": done,
            "previous": previous,
            "calm_steps": calm_steps,
            "elapsed": time.perf_counter() - start,
            "optimizer": lbfgs.state_dict() if optimizer == "lbfgs" else adam.state_dict(),
        }

    try:
        for step in range(first, iterations + 1):
            x.grad = None
            terms = objective(x)
            total = float(sum(terms.values(), torch.zeros((), device=x.device)))
            if not math.isfinite(total):
                raise ImpastoError(
                    f"the loss became {total} at step {step}; lower the weights or, with Adam, the --lr"
                )
            assert x.grad is not None
            updating = True
            if optimizer == "lbfgs":
                lbfgs.step(x, x.grad, total, reuse_grad=True)
            else:
                adam.step()
                with torch.no_grad():
                    x.clamp_(0, 1)
            if tolerance > 0 and math.isfinite(previous):
                change = abs(previous - total) / max(abs(previous), 1e-12)
                calm_steps = calm_steps + 1 if change < tolerance else 0
            previous, done, updating = total, step, False

            if on_progress is not None:
                on_progress(
                    Progress(
                        step=step,
                        total_steps=iterations,
                        losses={k: float(v) for k, v in terms.items()},
                        total=total,
                        elapsed=time.perf_counter() - start,
                        image=x.detach(),
                    )
                )
            if calm_steps >= PATIENCE:
                break
            if (
                on_checkpoint is not None
                and checkpoint_every
                and step % checkpoint_every == 0
                and step < iterations
            ):
                on_checkpoint(state())
    except KeyboardInterrupt:
        if on_checkpoint is not None and not updating and done >= first:
            on_checkpoint(state())
        raise
    return x.detach()
