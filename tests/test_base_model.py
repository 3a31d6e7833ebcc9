"""The shipped TinyWorld checkpoint: it loads, matches the generator, and passes its capability gates."""

import json
import time

import pytest

from hubhelpers import mixture
from hubhelpers import models as M
from hubhelpers import pretrain as P
from hubhelpers import world as W


@pytest.fixture(scope="module")
def card():
    return json.loads((M.shipped_model_dir() / "card.json").read_text())


@pytest.fixture(scope="module")
def shipped():
    return M.load_model("tinyworld", device="cpu")


def test_shipped_directory_is_small_and_safetensors_only():
    files = list(M.shipped_model_dir().iterdir())
    assert sum(f.stat().st_size for f in files) <= 20 * 2**20
    assert not [f for f in files if f.suffix in (".bin", ".pt", ".pth", ".pkl")]
    assert (M.shipped_model_dir() / "model.safetensors").is_file()


def test_card_fingerprint_matches_the_generator(card):
    assert card["generator_version"] == W.GENERATOR_VERSION
    assert card["world_fingerprint"] == mixture.fingerprint(W.WorldConfig(**card["world"])), (
        "the TinyWorld generator changed since the shipped model was trained: run `make base-model`")


def test_card_states_budget_and_command(card):
    assert card["command"] == "make base-model"
    for key in ("seed", "steps", "tokens_seen", "wall_minutes", "final_loss", "figures"):
        assert key in card
    assert card["wall_minutes"] <= 90


@pytest.fixture(scope="module")
def figures(shipped, card):
    model, tok = shipped
    return P.capability_figures(model, tok, W.make_world(W.WorldConfig(**card["world"])))


def test_card_figures_are_reproduced(figures, card):
    assert figures == card["figures"], "the card's figures must be the ones the checkpoint reproduces"


@pytest.mark.parametrize("gate", list(P.GATES))
def test_capability_gate(gate, figures):
    assert P.gate_failure(gate, figures[gate]) is None


def test_gate_checker_can_fail():
    figures = {"closed_book_train_acc": 0.5, "open_book_heldout_acc": 0.95, "closed_book_heldout_margin": 0.3,
               "few_shot_gain_8_vs_0": 0.4}
    failed = P.failed_gates(figures)
    assert len(failed) == 2 and "closed_book_train_acc=0.5" in failed[0]


def test_card_metadata_parses_and_reports_emissions(card):
    from huggingface_hub import ModelCard

    data = ModelCard.load(M.shipped_model_dir() / "README.md").data
    assert data.license and data.pipeline_tag == "text-generation"
    co2 = data.co2_eq_emissions
    assert co2 == card["co2_eq_emissions"]
    assert co2["emissions"] > 0 and co2["training_type"] == "pre-training"
    assert {"source", "geographical_location", "hardware_used"} <= set(co2)


def test_card_readme_is_rendered_from_card_json(card):
    assert (M.shipped_model_dir() / "README.md").read_text() == P.render_card(card)


def test_ship_command_measures_the_run_and_writes_it_to_the_card(tmp_path, tiny):
    from huggingface_hub import ModelCard

    from hubhelpers.training import TrainResult

    model, tok = tiny

    def run(cfg, checkpoint_dir):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 1.0:  # a second of work for the tracker to measure
            sum(i * i for i in range(10_000))
        return model, tok, W.make_world(), TrainResult(wall_s=time.perf_counter() - t0)

    P.ship_command(["--out", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "ckpt" / "checkpoint")],
                   "test", None, "unused", tmp_path, run, lambda *a: {}, lambda *a: {"figures": {}},
                   lambda card: P.front_matter(card, "text-generation") + "# card\n", gates={})
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    co2 = card["co2_eq_emissions"]
    assert co2["emissions"] > 0 and co2["source"].startswith("CodeCarbon")
    assert "measured over the whole run" in co2["source"]
    assert ModelCard.load(tmp_path / "out" / "README.md").data.co2_eq_emissions == co2
