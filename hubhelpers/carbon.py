"""Compute, energy and carbon of training: the 6·N·D FLOPs estimate, a GPU-hours calculator, published figures,
and a thin wrapper around CodeCarbon's offline tracker.

The calculator is the one behind the ML CO2 impact calculator and the emissions tables on model cards::

    energy (kWh) = GPU-hours × power per GPU (kW) × PUE
    CO2eq (kg)   = energy (kWh) × grid carbon intensity (kg CO2eq / kWh)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from codecarbon import OfflineEmissionsTracker, OutputMethod
from codecarbon.core.cpu import DEFAULT_POWER_PER_CORE, TDP
from codecarbon.external.hardware import CPU
from codecarbon.input import DataSource

from hubhelpers.params import check_positive

DEFAULT_COUNTRY = "FRA"  # the grid assumed where a run's location is not recorded (notebook 16's default too)
FLOPS_PER_PARAM_TOKEN = 6  # forward 2·N·D + backward 4·N·D


@dataclass(frozen=True)
class PublishedRun:
    """A published training run: size, tokens and (where reported) GPU-hours, power and emissions."""

    name: str
    params: float
    tokens: float
    gpu_hours: float | None = None
    gpu_power_w: float | None = None
    tco2eq: float | None = None
    reported_flops: float | None = None
    source: str = ""


# Llama 2 paper (Touvron et al. 2023), Table 2: A100-80GB GPUs counted at their 400 W peak power.
# GPT-3 paper (Brown et al. 2020), Table D.1: 3.14e23 training FLOPs for 175B parameters on 300B tokens.
PUBLISHED_RUNS: tuple[PublishedRun, ...] = (
    PublishedRun("GPT-3 175B", 175e9, 300e9, reported_flops=3.14e23, source="Brown et al. 2020, Table D.1"),
    PublishedRun("Llama 2 7B", 7e9, 2e12, 184_320, 400, 31.22, source="Touvron et al. 2023, Table 2"),
    PublishedRun("Llama 2 13B", 13e9, 2e12, 368_640, 400, 62.44, source="Touvron et al. 2023, Table 2"),
    PublishedRun("Llama 2 70B", 70e9, 2e12, 1_720_320, 400, 291.42, source="Touvron et al. 2023, Table 2"),
)


def published_run(name: str) -> PublishedRun:
    """The PUBLISHED_RUNS entry called `name`, or a ValueError naming the known ones."""
    for run in PUBLISHED_RUNS:
        if run.name == name:
            return run
    raise ValueError(f"unknown published run {name!r}; accepted: {', '.join(r.name for r in PUBLISHED_RUNS)}")


def training_flops(params: float, tokens: float) -> float:
    """C ≈ 6·N·D: FLOPs to train N parameters on D tokens (2·N·D forward, 4·N·D backward)."""
    return FLOPS_PER_PARAM_TOKEN * check_positive("params", params) * check_positive("tokens", tokens)


@dataclass(frozen=True)
class Footprint:
    """Energy and emissions of a run from the calculator."""

    energy_kwh: float
    co2eq_kg: float

    @property
    def tco2eq(self) -> float:
        return self.co2eq_kg / 1000


def footprint(gpu_hours: float, power_w: float, pue: float = 1.0, intensity_kg_per_kwh: float = 0.4) -> Footprint:
    """Energy = GPU-hours × power × PUE; CO2eq = energy × grid intensity (kg CO2eq per kWh)."""
    hours = check_positive("gpu_hours", gpu_hours, allow_zero=True)
    power = check_positive("power_w", power_w)
    pue = check_positive("pue", pue)
    if pue < 1:
        raise ValueError(f"pue must be >= 1 (facility energy / IT energy), got {pue!r}")
    intensity = check_positive("intensity_kg_per_kwh", intensity_kg_per_kwh, allow_zero=True)
    energy = hours * power / 1000 * pue
    return Footprint(energy, energy * intensity)


def implied_intensity(run: PublishedRun, pue: float = 1.0) -> float:
    """The grid intensity (kg CO2eq/kWh) that makes the calculator reproduce a run's published tCO2eq at `pue`."""
    if run.gpu_hours is None or run.gpu_power_w is None or run.tco2eq is None:
        raise ValueError(f"{run.name!r} has no published GPU-hours, power and emissions to compare with")
    return run.tco2eq * 1000 / footprint(run.gpu_hours, run.gpu_power_w, pue, 1.0).energy_kwh


@dataclass(frozen=True)
class TrackedRun:
    """What CodeCarbon measured around a function call."""

    energy_kwh: float
    co2eq_kg: float
    duration_s: float
    cpu_energy_kwh: float
    ram_energy_kwh: float
    gpu_energy_kwh: float
    cpu_power_w: float
    ram_power_w: float
    method: str
    country: str
    intensity_kg_per_kwh: float
    result: object = None


def grid_intensity(country_iso_code: str) -> float:
    """CodeCarbon's offline grid carbon intensity for a country (kg CO2eq per kWh), from its energy-mix table."""
    mix = DataSource().get_global_energy_mix_data()
    if country_iso_code not in mix:
        raise ValueError(f"CodeCarbon has no energy mix for country_iso_code {country_iso_code!r}; "
                         f"use a 3-letter ISO code such as 'FRA', 'USA', 'DEU'")
    return float(mix[country_iso_code]["carbon_intensity"]) / 1000


def table_tdp(cpu_model: str | None) -> float | None:
    """The TDP (W) that CodeCarbon's CPU table lists for `cpu_model`, or None when the table has no match."""
    if not cpu_model:
        return None
    power = TDP.__new__(TDP)._get_cpu_power_from_registry(cpu_model)  # the look-up alone, no detection
    return None if power is None else float(power)


def tdp_source(cpu_model: str | None, tdp: float, n_threads: int) -> str:
    """Where CodeCarbon's TDP for this CPU came from: its table, its per-thread default, or elsewhere."""
    known = table_tdp(cpu_model)
    if known is not None and known == tdp:
        return f"TDP {tdp:g} W from CodeCarbon's CPU table"
    if known is None and tdp == DEFAULT_POWER_PER_CORE * n_threads:
        return (f"not in CodeCarbon's CPU table, so TDP assumed {DEFAULT_POWER_PER_CORE} W per thread × {n_threads} "
                f"visible threads = {tdp:g} W")
    return f"TDP {tdp:g} W, not from CodeCarbon's CPU table"


def cpu_measurement_method(tracker) -> str:
    """How CodeCarbon measures the CPU on this machine, read from the tracker's hardware objects."""
    cpus = [h for h in getattr(tracker, "_hardware", []) if isinstance(h, CPU)]
    if not cpus:
        return "no CPU tracked"
    cpu = cpus[0]
    if cpu._mode == "intel_rapl":
        return "RAPL energy counters (measured)"
    source = (f"TDP {cpu._tdp:g} W, CodeCarbon's generic constant" if cpu._is_generic_tdp
              else tdp_source(cpu._model, cpu._tdp, cpu._cpu_count))
    if cpu._mode == "cpu_load":
        share = ("this process's CPU time / (wall time × visible threads)" if cpu._tracking_mode == "process"
                 else "a function of the machine's CPU load")
        return f"CPU load × TDP estimate ({cpu._model!r}: {source}; power = TDP × {share})"
    if cpu._mode == "constant":
        return f"constant power: half the TDP ({cpu._model!r}: {source})"
    return str(cpu._mode)


def track(fn: Callable[[], object], output_dir: str | Path, country_iso_code: str = "FRA",
          measure_power_secs: float = 5.0, tracking_mode: str = "process") -> TrackedRun:
    """Run fn() under CodeCarbon's OfflineEmissionsTracker (no network, quiet) and return what it measured."""
    if not (isinstance(country_iso_code, str) and len(country_iso_code) == 3 and country_iso_code.isupper()):
        raise ValueError(f"country_iso_code must be a 3-letter upper-case ISO code such as 'FRA', "
                         f"got {country_iso_code!r}")
    if tracking_mode not in ("process", "machine"):
        raise ValueError(f"tracking_mode must be 'process' or 'machine', got {tracking_mode!r}")
    check_positive("measure_power_secs", measure_power_secs)
    grid_intensity(country_iso_code)  # a ValueError for a country CodeCarbon has no energy mix for

    logging.getLogger("codecarbon").setLevel(logging.ERROR)  # before init: its start-up notices are not news
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tracker = OfflineEmissionsTracker(country_iso_code=country_iso_code, output_dir=str(output_dir),
                                      log_level="error", measure_power_secs=measure_power_secs,
                                      tracking_mode=tracking_mode, output_methods=[OutputMethod.CSV],
                                      project_name="llm-hub")
    t0 = time.perf_counter()
    tracker.start()
    try:
        result = fn()
    finally:
        tracker.stop()
    duration = time.perf_counter() - t0
    data = tracker.final_emissions_data
    energy = float(data.energy_consumed)
    return TrackedRun(energy_kwh=energy, co2eq_kg=float(data.emissions), duration_s=duration,
                      cpu_energy_kwh=float(data.cpu_energy), ram_energy_kwh=float(data.ram_energy),
                      gpu_energy_kwh=float(data.gpu_energy), cpu_power_w=float(data.cpu_power),
                      ram_power_w=float(data.ram_power),
                      method=cpu_measurement_method(tracker), country=str(data.country_name),
                      intensity_kg_per_kwh=float(data.emissions) / energy if energy > 0 else float("nan"),
                      result=result)


def card_emissions(co2eq_kg: float, source: str, country_iso_code: str, hardware: str,
                   training_type: str = "pre-training") -> dict:
    """The `co2_eq_emissions` entry of a Hugging Face model card (emissions in grams, as the card format asks)."""
    if training_type not in ("pre-training", "fine-tuning"):
        raise ValueError(f"training_type must be 'pre-training' or 'fine-tuning', got {training_type!r}")
    return {"emissions": round(co2eq_kg * 1000, 4), "source": source, "training_type": training_type,
            "geographical_location": f"not recorded; the grid intensity of {country_iso_code} "
                                     f"({grid_intensity(country_iso_code) * 1000:.0f} g CO2eq/kWh, CodeCarbon's table) "
                                     "is assumed",
            "hardware_used": hardware}


def tracked_card_emissions(tracked: TrackedRun, country_iso_code: str, hardware: str) -> dict:
    """The card entry for a run CodeCarbon tracked from start to end."""
    return card_emissions(tracked.co2eq_kg, f"CodeCarbon {codecarbon_version()} offline tracker, measured over the "
                          f"whole run ({tracked.duration_s / 60:.1f} min; CPU: {tracked.method})",
                          country_iso_code, hardware)


def estimated_card_emissions(probe: TrackedRun, wall_s: float, country_iso_code: str, hardware: str) -> dict:
    """The card entry for a run known only by its wall time: CodeCarbon's mean power on a probe of the same work.

    energy = (probe energy / probe duration) x wall time; CO2eq = energy x the grid intensity of the country.
    """
    check_positive("wall_s", wall_s)
    check_positive("probe duration_s", probe.duration_s)
    power_w = probe.energy_kwh * 3.6e6 / probe.duration_s
    energy_kwh = power_w * wall_s / 3.6e6
    return card_emissions(energy_kwh * grid_intensity(country_iso_code),
                          f"estimate: the recorded wall time ({wall_s / 60:.1f} min) x the mean power CodeCarbon "
                          f"{codecarbon_version()} measured on {probe.duration_s:.0f} s of the same training "
                          f"({power_w:.1f} W; CPU: {probe.method}); not measured over the run itself",
                          country_iso_code, hardware)


def codecarbon_version() -> str:
    """The installed CodeCarbon version."""
    import codecarbon

    return codecarbon.__version__
