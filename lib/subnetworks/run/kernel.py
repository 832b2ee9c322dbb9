"""A Python kernel shared by every notebook of a study run, and papermill's execution of a notebook in it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager
from nbclient.util import run_sync

from ..nn.progress import PROGRESS_FILE
from ..spec import repo_root

KERNEL_NAME = "python3"


class SharedKernel:
    """One Python kernel reused by every notebook of a study run, reset (``%reset -f``) before each.

    A fresh kernel per notebook costs seconds of start-up and imports (torch, transformers) each time; with
    dozens of stage notebooks that would dominate a short study. Modules stay imported; variables do not.
    """

    def __init__(self, threads: int = 0):
        self.threads = threads  # torch/OpenMP threads in the kernel; 0 = its default

    def __enter__(self) -> SharedKernel:
        env = dict(os.environ, **({"OMP_NUM_THREADS": str(self.threads)} if self.threads else {}))
        # Unix sockets in a directory of this kernel's own (where the OS has them), not TCP ports: jupyter_client
        # picks free ports that the kernel binds a moment later, so kernels starting together on one node (workers,
        # Slurm jobs) could pick the same one and one died with "Address already in use". Socket files in a private
        # directory cannot collide; a short name keeps their paths under the OS limit of about 100 characters.
        self._sockets = None if os.name == "nt" else tempfile.TemporaryDirectory(prefix="subnetworks-kernel-")
        sockets = {"transport": "ipc", "ip": os.path.join(self._sockets.name, "k")} if self._sockets else {}
        self.km = AsyncKernelManager(kernel_name=KERNEL_NAME, **sockets)
        # no IPython history: a shared sqlite file that parallel kernels would lock, and one more write that can fail
        run_sync(self.km.start_kernel)(
            cwd=str(repo_root()), env=env, extra_arguments=["--HistoryManager.enabled=False"]
        )
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=120)
        return self

    def __exit__(self, *exc) -> None:
        self.kc.stop_channels()
        run_sync(self.km.shutdown_kernel)(now=True)
        if self._sockets is not None:
            self._sockets.cleanup()

    def execute(
        self, source: Path, output: Path | None, parameters: dict[str, Any], progress: Path | None = None
    ) -> None:
        """Reset the kernel's namespace, then run ``source`` with ``parameters`` into ``output``; its progress bars
        draw into the file ``progress`` where one is given, else into the notebook (:mod:`..nn.progress`)."""
        reset = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_reset_source(progress))])
        reset.metadata["kernelspec"] = {"name": KERNEL_NAME, "language": "python", "display_name": "Python 3"}
        common = {"kernel_name": KERNEL_NAME, "km": self.km, "kc": self.kc, "progress_bar": False}
        papermill.execute_notebook(reset, None, **common)
        papermill.execute_notebook(
            str(source), str(output) if output else None, parameters=parameters, cwd=str(repo_root()), **common
        )


def _reset_source(progress: Path | None) -> str:
    """The cell run before each notebook: point the kernel's progress bars at this run's file (or at none, so none
    is left from the run before), then empty the namespace, ``os`` included."""
    key = repr(PROGRESS_FILE)
    where = f"os.environ[{key}] = {str(progress)!r}" if progress else f"os.environ.pop({key}, None)"
    return f"import os\n{where}\n%reset -f"
