"""What produced a run: code version, library versions, machine and device (``env.json`` beside every run)."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import datasets
import torch
import transformers

from .. import __version__
from ..spec import git_commit


def environment(device: str) -> dict[str, Any]:
    """What produced a run: code version, library versions, machine and device."""
    info = {
        "subnetworks": __version__,
        "git_sha": git_commit(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
