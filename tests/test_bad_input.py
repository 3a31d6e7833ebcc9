"""Bad input gets a clear error: every notebook parameter and the public helpers, tried one by one and counted.

Notebook parameters: the parameters cell is executed, one parameter is replaced by an out-of-range or
wrongly-typed value, and the validation cell right after it must raise a ValueError/TypeError naming that
parameter. Helpers: a table of calls that must raise an error naming the bad value and what is accepted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# bad values by the annotated type of a parameter: out of range, then the wrong type
BAD_BY_TYPE = {"int": (-1, "3"), "float": (-1.0, "0.5"), "str": ("", 42), "list": ([], "x"), "bool": ("yes", 1)}


def _parameter_cells(path: Path) -> tuple[str, str, dict[str, str]]:
    """(parameters cell source, validation cell source, {name: annotated type})."""
    nb = nbformat.read(path, as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    params = nb.cells[index].source
    types = {node.target.id: ast.unparse(node.annotation) for node in ast.parse(params).body
             if isinstance(node, ast.AnnAssign)}
    return params, nb.cells[index + 1].source, types


def _cases() -> list[tuple[str, str, object]]:
    cases = []
    for path in NOTEBOOKS:
        _, _, types = _parameter_cells(path)
        for name, kind in types.items():
            cases += [(path.stem, name, bad) for bad in BAD_BY_TYPE.get(kind, ())]
    return cases


NOTEBOOK_CASES = _cases()


def test_every_notebook_parameter_is_covered():
    covered = {(nb, name) for nb, name, _ in NOTEBOOK_CASES}
    declared = {(path.stem, name) for path in NOTEBOOKS for name in _parameter_cells(path)[2]}
    assert covered == declared, f"parameters with an unsupported annotation: {sorted(declared - covered)}"
    assert len(NOTEBOOK_CASES) >= 2 * len(declared) >= 100


@pytest.mark.parametrize("notebook, name, bad", NOTEBOOK_CASES, ids=lambda v: repr(v) if not isinstance(v, str)
                         else v)
def test_notebook_validation_cell_rejects(notebook, name, bad):
    params, validation, _ = _parameter_cells(ROOT / "notebooks" / f"{notebook}.ipynb")
    scope: dict = {}
    exec(params, scope)  # the committed defaults
    exec(validation, dict(scope))  # ... pass
    scope[name] = bad
    with pytest.raises((ValueError, TypeError)) as err:
        exec(validation, scope)
    assert name in str(err.value), f"{notebook}: the error for {name}={bad!r} does not name {name}: {err.value}"


def _helper_cases():
    """(label, call, expected message part): each call must raise ValueError/TypeError/FileNotFoundError."""
    from hubhelpers import (
        bench,
        chains,
        course,
        encoders,
        evaluation,
        finetune,
        models,
        prompting,
        results,
        runtime,
        training,
        world,
    )

    w = world.make_world(world.WorldConfig(n_train=12, n_heldout=6))
    return [
        ("world: negative seed", lambda: world.make_world(world.WorldConfig(seed=-1)), "seed"),
        ("world: zero people", lambda: world.make_world(world.WorldConfig(n_train=0)), "n_train"),
        ("world: unknown relation", lambda: world.check_relation("shoe"), "shoe"),
        ("world: unknown split", lambda: world.closed_book_questions(w, "test"), "'test'"),
        ("world: negative shots", lambda: world.few_shot_questions(w, k=-1), "k must be"),
        ("world: zero passages", lambda: world.open_book_questions(w, n_passages=0), "n_passages"),
        ("world: n = 0", lambda: world.instruction_examples(w, 0), "n must be"),
        ("models: unknown preset", lambda: models.preset("huge"), "huge"),
        ("models: empty corpus", lambda: models.train_tokenizer([]), "empty corpus"),
        ("models: tiny vocabulary", lambda: models.train_tokenizer(["a b"], 10), "vocab_size"),
        ("models: unsupported bits", lambda: models.load_model(quantization="3bit"), "3bit"),
        ("models: unknown device", lambda: models.load_model(device="tpu"), "tpu"),
        ("models: unknown dtype", lambda: models.load_model(dtype="int3"), "int3"),
        ("models: unknown task", lambda: models.load_model(task="translation"), "translation"),
        ("models: empty model name", lambda: models.load_model(""), "model must be"),
        ("models: missing local dir", lambda: models.load_model("./no/such/dir"), "config.json"),
        ("training: steps 0", lambda: training.TrainConfig(steps=0), "steps"),
        ("training: lr 2", lambda: training.TrainConfig(lr=2.0), "lr"),
        ("training: warm-up past the end", lambda: training.TrainConfig(steps=10, warmup_steps=20), "warmup"),
        ("training: no examples", lambda: training.encode_examples(None, []), "at least one example"),
        ("evaluation: batch size 0", lambda: list(evaluation.batches([1, 2], 0)), "batch_size"),
        ("evaluation: no texts", lambda: evaluation.perplexity(None, None, []), "at least one text"),
        ("prompting: unknown template", lambda: prompting.render_prompt("poem", None), "poem"),
        ("prompting: window 1", lambda: prompting.truncate_to_window(None, "x", 1), "window"),
        ("prompting: negative distance", lambda: prompting.fill_to_distance(None, "f", [], -3, "?"), "distance"),
        ("finetune: steps 0", lambda: finetune.sft_config("out", steps=0), "steps"),
        ("finetune: lr 5", lambda: finetune.sft_config("out", lr=5.0), "lr"),
        ("finetune: no examples", lambda: finetune.chat_dataset([]), "at least one example"),
        ("encoders: one label", lambda: encoders.load_encoder(labels=["only"]), "two distinct"),
        ("encoders: no texts", lambda: encoders.embed(None, None, []), "at least one text"),
        ("chains: unknown device", lambda: chains.minilm_embeddings(device="tpu"), "tpu"),
        ("results: bad figure name", lambda: results.Results("01_x").record("Bad Name!", 1.0), "Bad Name!"),
        ("results: bad band", lambda: results.validate_band("f", at_least="high", at_most=None), "high"),
        ("runtime: negative seed", lambda: runtime.seed_everything(-5), "-5"),
        ("runtime: seed of wrong type", lambda: runtime.seed_everything("0"), "'0'"),
        ("course: unknown notebook", lambda: course.discover_notebooks(ROOT / "notebooks", ["99"]), "99"),
        ("bench: too few steps", lambda: bench.training_throughput(steps=1), "steps"),
    ]


HELPER_CASES = _helper_cases()


def test_helper_table_is_broad():
    modules = {label.split(":")[0] for label, _, _ in HELPER_CASES}
    assert len(HELPER_CASES) >= 35 and len(modules) >= 12


@pytest.mark.parametrize("label, call, match", HELPER_CASES, ids=[c[0] for c in HELPER_CASES])
def test_helper_rejects(label, call, match, tmp_path, monkeypatch):
    monkeypatch.setenv("HUBHELPERS_BUILD_DIR", str(tmp_path))
    with pytest.raises((ValueError, TypeError, FileNotFoundError)) as err:
        call()
    assert match in str(err.value), f"{label}: {err.value}"
