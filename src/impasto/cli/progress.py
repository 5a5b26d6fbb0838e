"""What the command line does with a run's progress events: a bar, and a record of the run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from impasto.optimize import Progress


class ProgressBar:
    """A tqdm bar fed by progress events, drawn at the first step, so that an error before it
    prints one clean line. With ``auto_from`` (the --style-weight of a run under --balance auto),
    the weight the pair settled on is said once, above the bar."""

    def __init__(
        self, quiet: bool = False, desc: str | None = None, auto_from: float | None = None
    ) -> None:
        self.quiet, self.desc, self.auto_from = quiet, desc, auto_from
        self.bar: Any = None

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            if self.auto_from and p.style_weight is not None:
                print(
                    f"balance auto: style weight {p.style_weight:.3g} for this pair "
                    f"({p.style_weight / self.auto_from:.2f} x --style-weight {self.auto_from:g})",
                    file=sys.stderr,
                )
            self.bar = tqdm(
                total=p.total_steps,
                initial=p.step - 1,
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
                desc=self.desc,
            )
        scale = {"scale": f"{p.scale}/{p.scales}"} if p.scales > 1 else {}
        tiles = {"tiles": p.tiles} if p.tiles else {}
        losses = {k: f"{v:.3g}" for k, v in p.losses.items()}
        self.bar.set_postfix(scale | tiles | losses, refresh=False)
        self.bar.update(p.step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class RunRecorder:
    """What a run leaves for after it: the step reached, the time, the image so far (for
    Ctrl-C), the loss history (for --report), and numbered snapshots (--save-every)."""

    def __init__(self, output: Path | None = None, save_every: int = 0) -> None:
        self.output, self.save_every = output, save_every
        self.step = 0
        self.elapsed = 0.0
        self.image: Any = None
        self.snapshot: Path | None = None
        self.history: list[dict[str, float]] = []
        self.style_weight: float | None = None  # the run's, once it started (--balance auto)

    def __call__(self, p: Progress) -> None:
        self.step, self.elapsed, self.style_weight = p.step, p.elapsed, p.style_weight
        self.image = p.image.detach().clone() if p.image is not None else None
        self.history.append(dict(p.losses))
        if (
            self.save_every
            and self.output
            and p.step % self.save_every == 0
            and p.image is not None
        ):
            from impasto.image import save_image, snapshot_path

            self.snapshot = save_image(p.image, snapshot_path(self.output, p.step))


def fanout(*callbacks: Any) -> Any:
    """One progress callback that calls each of ``callbacks`` in turn."""

    def call(p: Progress) -> None:
        for callback in callbacks:
            callback(p)

    return call
