"""Runtime helpers: seeding, an environment report, plot defaults, Colab detection.

Nothing here runs at import time.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

import matplotlib as mpl
import numpy as np
import torch

from hubhelpers.params import check_int

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
REPORTED_PACKAGES = (
    "transformers",
    "peft",
    "trl",
    "bitsandbytes",
    "datasets",
    "accelerate",
    "langchain",
    "chromadb",
    "sentence-transformers",
)
MAX_SEED = 2**32 - 1

PLOT_DEFAULTS: dict[str, Any] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": "medium",
    "legend.frameon": False,
}


def validate_seed(seed: object) -> int:
    """Return ``seed`` if it is an int in [0, 2**32 - 1], else raise naming the bad value."""
    return check_int("seed", seed, low=0, high=MAX_SEED)


def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seed python, numpy and torch (CPU and CUDA); optionally force deterministic torch kernels."""
    seed = validate_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return seed


def in_colab() -> bool:
    """Return True when running inside Google Colab."""
    return "google.colab" in sys.modules


def package_version(name: str) -> str | None:
    """Return the installed version of distribution ``name``, or None when absent."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _accelerators() -> dict[str, Any]:
    """Describe torch, CUDA and MPS availability and device names."""
    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    return {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": cuda,
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "mps_available": bool(mps_backend and mps_backend.is_available()),
    }


def runtime_report() -> dict[str, Any]:
    """Return a dict describing python, torch/CUDA/MPS, Colab, offline flags, CPUs and packages."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        **_accelerators(),
        "in_colab": in_colab(),
        "offline": {var: os.environ.get(var, "") for var in OFFLINE_VARS},
        "cpu_count": os.cpu_count() or 1,
        "packages": {name: package_version(name) for name in REPORTED_PACKAGES},
    }


def format_runtime_report(report: Mapping[str, Any]) -> str:
    """Render a runtime report as aligned 'key: value' lines."""
    lines: list[str] = []
    for key, value in report.items():
        if isinstance(value, Mapping):
            lines.append(f"{key}:")
            lines.extend(f"  {k:<24} {'-' if v in (None, '') else v}" for k, v in value.items())
        else:
            lines.append(f"{key:<26} {value}")
    return "\n".join(lines)


def print_runtime_report(report: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Print the runtime report (computed if not given) and return it."""
    report = dict(report) if report is not None else runtime_report()
    print(format_runtime_report(report))
    return report


def setup_plots(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Apply the course's matplotlib defaults (plus ``overrides``) and return what was applied."""
    settings = {**PLOT_DEFAULTS, **(overrides or {})}
    unknown = sorted(set(settings) - set(mpl.rcParams))
    if unknown:
        raise KeyError(f"unknown matplotlib rcParams {unknown}; see matplotlib.rcParams.keys()")
    mpl.rcParams.update(settings)
    return settings
