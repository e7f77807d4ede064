"""The tutorial notebook, kept from going stale: docs/tutorial.py (jupytext's percent format) is its source,
docs/tutorial.ipynb the executed notebook readers open.

    python scripts/tutorial.py check   executes the source as a notebook (nbclient, a fresh kernel) and checks
                                       that the committed notebook's cells are the source's (scripts/test-python.sh)
    python scripts/tutorial.py write   executes it and writes docs/tutorial.ipynb with its outputs

Needs jupytext, nbclient, nbformat, ipykernel, and what the tutorial imports (boltzformer, torch,
matplotlib), all in the running Python.
"""

import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

DOCS = Path(__file__).resolve().parents[1] / "docs"
SOURCE, NOTEBOOK = DOCS / "tutorial.py", DOCS / "tutorial.ipynb"
#: Seconds one cell may take (the whole notebook takes well under a minute on 2 cores).
CELL_TIMEOUT = 300


def cells(nb: nbformat.NotebookNode) -> list:
    return [(c.cell_type, c.source) for c in nb.cells]


def execute() -> nbformat.NotebookNode:
    nb = jupytext.read(SOURCE)
    start = time.perf_counter()
    # The notebook runs in docs/, as a reader's would; matplotlib draws inline images. The kernel listens on
    # the loopback address only (its "running over TCP" warning is about that).
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(DOCS)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    if errors:  # nbclient raises on an error; this is a second guard
        sys.exit(f"tutorial: a cell failed: {errors[0].ename}: {errors[0].evalue}")
    print(f"tutorial: {len(nb.cells)} cells executed in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return nb


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) == 2 else ""
    if mode not in ("check", "write"):
        sys.exit(__doc__)
    nb = execute()
    if mode == "write":
        nbformat.write(nb, NOTEBOOK)
        print(f"tutorial: wrote {NOTEBOOK}", file=sys.stderr)
        return
    committed = nbformat.read(NOTEBOOK, as_version=4)
    if cells(committed) != cells(nb):
        differing = [i for i, (a, b) in enumerate(zip(cells(committed), cells(nb))) if a != b]
        sys.exit(f"tutorial: docs/tutorial.ipynb is not docs/tutorial.py (cells {differing or 'count'} differ); "
                 "run `python scripts/tutorial.py write` after editing the source")


if __name__ == "__main__":
    main()
