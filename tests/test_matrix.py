"""The compatibility matrix: the model directories it builds, its verdicts, and two notebooks on a random GPT-2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hubhelpers.models import load_model
from hubhelpers.tooling import matrix as M


def test_random_gpt2_is_a_base_model_with_its_own_tokenizer(tiny_gpt2_dir: Path) -> None:
    model, tokenizer = load_model(str(tiny_gpt2_dir), device="cpu")
    assert type(model).__name__ == "GPT2LMHeadModel" and model.config.vocab_size == len(tokenizer) == 768
    assert not tokenizer.chat_template
    assert tokenizer.pad_token == tokenizer.eos_token  # none saved: the course's loader pads with eos
    assert model.config.resid_pdrop > 0  # dropout on, as a hub GPT-2 ships


def test_rehoused_mistral_has_the_shipped_models_logits(tmp_path: Path) -> None:
    M.build_rehoused_mistral(tmp_path / "m")  # raises when the logits differ by more than 1e-5
    mistral, tokenizer = load_model(str(tmp_path / "m"), device="cpu")
    shipped, _ = load_model("tinyworld", device="cpu")
    ids = tokenizer(["Q: Where does Ada live?\nA:"], return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(mistral(**ids).logits, shipped(**ids).logits, atol=1e-5)
    assert mistral.config.model_type == "mistral"


def test_verdicts() -> None:
    mech = {"at_least": 0.0, "at_most": 1e-6, "value": 0.0, "passed": True, "kind": "mechanism", "checked": True}
    outside = {"at_least": 0.9, "at_most": None, "value": 0.1, "passed": False, "kind": "shipped", "checked": False}
    bands = {"diff": mech, "acc": outside}
    assert M.cell_verdict(True, bands, all_bands=False)["status"] == "passed"
    assert M.cell_verdict(True, bands, all_bands=True)["failed_bands"] == ["acc"]  # re-housed: every band holds
    assert M.cell_verdict(False, {"diff": mech}, all_bands=False)["status"] == "failed"
    broken = {"diff": {**mech, "passed": False}}
    assert M.cell_verdict(True, broken, all_bands=False)["failed_bands"] == ["diff"]
    assert M.verdict_text(M.cell_verdict(True, bands, False)) == "✅ passed · 1 shipped-model bands not checked"
    inside = {"acc": {**outside, "value": 0.95, "passed": True}}
    assert M.verdict_text(M.cell_verdict(True, inside, True)) == "✅ passed · its 1 shipped-model bands hold too"
    table = M.render_matrix({"random-gpt2": {"05_x": M.cell_verdict(False, {}, False)}})
    assert "| 05_x | ❌ failed: stopped before its end |" in table


@pytest.mark.timeout(900)
def test_two_notebooks_run_to_their_end_on_a_random_gpt2(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """05 (the hand-written SGD step, dropout on) and 08 (GPT-2's Conv1D layers): every mechanism band holds."""
    (tmp_path / "models" / "random-gpt2").mkdir(parents=True)
    (tmp_path / "models" / "random-gpt2" / "model").symlink_to(tiny_gpt2_dir)
    assert M.main(["--models", "random-gpt2", "--only", "05", "08", "--build-dir", str(tmp_path)]) == 0
    column = json.loads((tmp_path / "models" / "matrix.json").read_text())["random-gpt2"]
    assert set(column) == {"05_full_fine_tuning", "08_quantization"}
    assert all(cell["ran_to_end"] and cell["status"] == "passed" for cell in column.values())
    assert all(cell["not_checked"] > 0 for cell in column.values())  # the shipped-model bands: reported
    assert "random-gpt2" in (tmp_path / "models" / "MATRIX.md").read_text()


def test_readme_column_from_the_matrix() -> None:
    ok, bad = M.cell_verdict(True, {}, False), M.cell_verdict(False, {}, False)
    matrix = {"rehoused-mistral": {"02_x": M.NO_MODEL, "05_y": ok},
              "random-gpt2": {"02_x": M.NO_MODEL, "05_y": bad},
              "random-gqa-32k": {"02_x": M.NO_MODEL}}  # 05 not run on every model yet: left as it is
    assert M.readme_cells(matrix) == {"02": "– – –"}
    matrix["random-gqa-32k"]["05_y"] = ok
    assert M.readme_cells(matrix)["05"] == "✅ ❌ ✅"
    text = "| # | notebook | CPU time | other models |\n|---|---|---|---|\n| 05 | [y](n.ipynb) | ≈40 s | – |\n"
    assert M.update_readme_column(text, M.README_COLUMN, M.readme_cells(matrix)).endswith(
        "| 05 | [y](n.ipynb) | ≈40 s | ✅ ❌ ✅ |\n")


def test_only_notebooks_whose_model_is_a_causal_lm_take_the_matrix_models(tmp_path: Path) -> None:
    def notebook(name: str, parameters: str) -> Path:
        cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": parameters, "outputs": [],
                "execution_count": None}
        path = tmp_path / name
        path.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
        return path

    assert M.takes_causal_model(notebook("05_x.ipynb", 'SEED: int = 0  # s\nMODEL: str = "tinyworld"  # m\n'))
    assert not M.takes_causal_model(notebook("13_x.ipynb", 'ENCODER: str = "minilm"  # e\n'))
    assert not M.takes_causal_model(notebook("17_x.ipynb", 'MODEL: str = "tinyworld-t5"  # an encoder-decoder\n'))
