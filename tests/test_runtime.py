"""Tests of the runtime helpers and of the package's lazy import."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from hubhelpers import runtime


def test_seed_everything_reproduces_python_numpy_torch() -> None:
    import numpy as np
    import torch

    def draw() -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    runtime.seed_everything(123)
    first = draw()
    runtime.seed_everything(123)
    assert draw() == first
    runtime.seed_everything(124)
    assert draw() != first


def test_seed_everything_deterministic_flag() -> None:
    import torch

    try:
        runtime.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, None, 2**32])
def test_seed_validation_names_value(bad: object) -> None:
    with pytest.raises((TypeError, ValueError), match="seed"):
        runtime.seed_everything(bad)  # type: ignore[arg-type]


def test_runtime_report_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    report = runtime.runtime_report()
    keys = ("python", "torch", "cuda_available", "cuda_devices", "mps_available", "in_colab", "cpu_count")
    assert set(keys) <= set(report)
    assert report["offline"]["HF_HUB_OFFLINE"] == "1"
    assert report["in_colab"] is False
    assert set(runtime.REPORTED_PACKAGES) <= set(report["packages"])
    assert report["packages"]["transformers"]


def test_print_runtime_report(capsys: pytest.CaptureFixture[str]) -> None:
    report = runtime.print_runtime_report({"python": "3.11", "packages": {"peft": None, "trl": "1.0"}})
    out = capsys.readouterr().out
    assert "python" in out and "peft" in out and "trl" in out and report["python"] == "3.11"


def test_package_version_missing() -> None:
    assert runtime.package_version("surely-not-installed-package-xyz") is None


def test_in_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runtime.in_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", object())
    assert runtime.in_colab() is True


def test_setup_plots_applies_only_when_called() -> None:
    import matplotlib as mpl

    with mpl.rc_context():
        applied = runtime.setup_plots({"lines.linewidth": 3.0})
        assert mpl.rcParams["axes.grid"] is True
        assert mpl.rcParams["lines.linewidth"] == 3.0
        assert applied["lines.linewidth"] == 3.0


def test_setup_plots_rejects_unknown_keys() -> None:
    with pytest.raises(KeyError, match="not.a.param"):
        runtime.setup_plots({"not.a.param": 1})


def test_recording_and_parameter_checks_import_no_heavy_library() -> None:
    """The runner and the notebooks' first cells import these; they stay cheap (lesson modules import torch)."""
    code = (
        "import sys, hubhelpers, hubhelpers.results, hubhelpers.params, hubhelpers.tooling;"
        "heavy = [m for m in ('torch', 'matplotlib', 'numpy', 'transformers') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_package_has_no_lazy_attributes() -> None:
    import hubhelpers

    assert hubhelpers.__version__
    with pytest.raises(AttributeError):
        hubhelpers.no_such_thing  # noqa: B018


def test_bitsandbytes_cpu_kernel_notice_is_dropped_and_nothing_else() -> None:
    code = (
        "import logging, hubhelpers;"
        "log = logging.getLogger('bitsandbytes.backends.cpu.ops');"
        "log.warning('Failed to load CPU gemm_4bit_forward from kernels-community: x');"
        "log.warning('another bitsandbytes warning')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "gemm_4bit_forward" not in out.stderr
    assert "another bitsandbytes warning" in out.stderr
