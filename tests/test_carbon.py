"""The compute and carbon helpers: 6·N·D, the GPU-hours calculator against published figures, CodeCarbon wrapper."""

import math
import time

import pytest

from hubhelpers import carbon as C


def test_six_n_d_reproduces_gpt3_training_flops():
    gpt3 = C.published_run("GPT-3 175B")
    flops = C.training_flops(gpt3.params, gpt3.tokens)
    assert flops == pytest.approx(3.15e23)
    assert flops == pytest.approx(gpt3.reported_flops, rel=0.01)  # paper: 3.14e23


@pytest.mark.parametrize("name", ["Llama 2 7B", "Llama 2 13B", "Llama 2 70B"])
def test_calculator_reproduces_llama2_emissions_within_half_a_percent(name):
    run = C.published_run(name)
    # 400 W per A100, PUE 1.0 and 0.4235 kg CO2eq/kWh reproduce Table 2 of the Llama 2 paper
    fp = C.footprint(run.gpu_hours, run.gpu_power_w, pue=1.0, intensity_kg_per_kwh=0.4235)
    assert fp.tco2eq == pytest.approx(run.tco2eq, rel=0.005)
    assert fp.energy_kwh == pytest.approx(run.gpu_hours * 0.4)


def test_implied_intensity_is_the_same_for_all_llama2_sizes_and_scales_with_pue():
    values = [C.implied_intensity(C.published_run(n)) for n in ("Llama 2 7B", "Llama 2 13B", "Llama 2 70B")]
    assert max(values) - min(values) < 1e-3 and values[0] == pytest.approx(0.4234, abs=1e-3)
    assert C.implied_intensity(C.published_run("Llama 2 7B"), pue=1.1) == pytest.approx(values[0] / 1.1)


def test_footprint_arithmetic():
    fp = C.footprint(10, 250, pue=1.2, intensity_kg_per_kwh=0.5)
    assert fp.energy_kwh == pytest.approx(10 * 0.25 * 1.2)
    assert fp.co2eq_kg == pytest.approx(fp.energy_kwh * 0.5) and fp.tco2eq == pytest.approx(fp.co2eq_kg / 1000)


@pytest.mark.parametrize("kwargs,match", [({"gpu_hours": -1}, "gpu_hours"), ({"power_w": 0}, "power_w"),
                                          ({"pue": 0.9}, "pue"), ({"intensity_kg_per_kwh": math.nan}, "intensity")])
def test_footprint_rejects_bad_inputs(kwargs, match):
    args = {"gpu_hours": 1.0, "power_w": 400.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        C.footprint(**args)


def test_bad_names_raise():
    with pytest.raises(ValueError, match="'GPT-5'"):
        C.published_run("GPT-5")
    with pytest.raises(ValueError, match="tokens"):
        C.training_flops(1e9, -5)
    with pytest.raises(ValueError, match="'ZZZ'"):
        C.grid_intensity("ZZZ")
    with pytest.raises(ValueError, match="'fr'"):
        C.track(lambda: None, "unused", country_iso_code="fr")


def test_grid_intensity_orders_countries():
    assert 0 < C.grid_intensity("FRA") < C.grid_intensity("USA") < 1.5


def test_track_measures_a_busy_loop_offline(tmp_path):
    def busy():
        end, n = time.perf_counter() + 1.0, 0
        while time.perf_counter() < end:
            n += 1
        return n

    run = C.track(busy, tmp_path, country_iso_code="FRA", measure_power_secs=0.5)
    assert run.result > 0 and run.duration_s >= 1.0
    assert run.energy_kwh > 0 and run.co2eq_kg > 0
    assert run.energy_kwh == pytest.approx(run.cpu_energy_kwh + run.ram_energy_kwh + run.gpu_energy_kwh, rel=1e-6)
    assert run.intensity_kg_per_kwh == pytest.approx(C.grid_intensity("FRA"), rel=1e-3)
    assert run.method and run.country == "France"
    assert run.cpu_power_w > 0 and run.ram_power_w > 0
    assert (tmp_path / "emissions.csv").is_file()


def test_tdp_source_tells_the_table_from_codecarbons_per_thread_default():
    assert C.table_tdp("AMD EPYC 9555") == 360  # a row of CodeCarbon's cpu_power.csv
    assert C.table_tdp("AMD EPYC") is None and C.table_tdp(None) is None  # a VM's model name without a number
    assert C.tdp_source("AMD EPYC 9555", 360, 2) == "TDP 360 W from CodeCarbon's CPU table"
    assumed = C.tdp_source("AMD EPYC", 8, 2)
    assert "not in CodeCarbon's CPU table" in assumed and "4 W per thread × 2 visible threads = 8 W" in assumed
    assert C.tdp_source("AMD EPYC", 50, 2) == "TDP 50 W, not from CodeCarbon's CPU table"


def test_cpu_measurement_method_names_the_assumption(tmp_path):
    from types import SimpleNamespace

    from codecarbon.external.hardware import CPU

    unknown = CPU(str(tmp_path), "cpu_load", "AMD EPYC", 4 * 3, tracking_mode="process")
    unknown._cpu_count = 3
    line = C.cpu_measurement_method(SimpleNamespace(_hardware=[unknown]))
    assert line.startswith("CPU load × TDP estimate ('AMD EPYC': not in CodeCarbon's CPU table")
    assert "= 12 W" in line and "this process's CPU time" in line
    known = CPU(str(tmp_path), "cpu_load", "AMD EPYC 9555", 360, tracking_mode="machine")
    assert "TDP 360 W from CodeCarbon's CPU table" in C.cpu_measurement_method(SimpleNamespace(_hardware=[known]))
    assert C.cpu_measurement_method(SimpleNamespace(_hardware=[])) == "no CPU tracked"


def _probe(energy_kwh: float, duration_s: float) -> C.TrackedRun:
    return C.TrackedRun(energy_kwh=energy_kwh, co2eq_kg=0.0, duration_s=duration_s, cpu_energy_kwh=energy_kwh,
                             ram_energy_kwh=0.0, gpu_energy_kwh=0.0, cpu_power_w=0.0, ram_power_w=0.0,
                             method="a test", country="France", intensity_kg_per_kwh=0.0)


def test_estimated_card_emissions_scale_the_probe_power_to_the_wall_time():
    probe = _probe(energy_kwh=10 * 60 / 3.6e6, duration_s=60)  # 10 W for one minute
    entry = C.estimated_card_emissions(probe, wall_s=3600, country_iso_code="FRA", hardware="2 threads")
    # 10 W for an hour = 0.01 kWh, times FRA's intensity, in grams
    assert entry["emissions"] == pytest.approx(0.01 * C.grid_intensity("FRA") * 1000, rel=1e-3)
    assert entry["source"].startswith("estimate")
    assert entry["training_type"] == "pre-training" and entry["hardware_used"] == "2 threads"
    assert "FRA" in entry["geographical_location"]


def test_card_emissions_reject_bad_input():
    with pytest.raises(ValueError, match="training_type"):
        C.card_emissions(0.1, "x", "FRA", "cpu", training_type="inference")
    with pytest.raises(ValueError, match="wall_s"):
        C.estimated_card_emissions(_probe(1e-6, 1.0), 0, "FRA", "cpu")
