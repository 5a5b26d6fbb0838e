"""Many pictures at once: ``impasto batch`` and :func:`impasto.batch`, on one machine or Ray.

One module per job, the data flowing down the list:

- ``plan``: the items (photo, style, settings, output name) from folders, patterns or a CSV.
- ``manifest``: ``manifest.jsonl``, what is done and what failed, kept consistent at any stop.
- ``work``: one item's work on an engine, the same on every backend; the local backend.
- ``ray_backend``: the items over Ray workers, each an actor holding one engine.
- ``run``: the driver: leaves out what is done, runs the rest, writes what comes back.

The package is named for what it does, not ``batch``, so that ``impasto.batch`` stays the
function.
"""

RAY_MISSING = 'the Ray backend needs Ray, which is not installed: pip install "impasto[ray]"'
