"""Bad input gets a clear error: every notebook parameter and the public helpers, tried one by one and counted.

Notebook parameters: the parameters cell is executed, one parameter is replaced by an out-of-range or
wrongly-typed value (a bool for a number, a bool inside a list) or by one that breaks a relation to another
parameter, and the validation cell right after it (one `check_params` call) must raise a ValueError that starts
with "NAME must". Helpers: a table of calls that must raise an error naming the bad value and what is accepted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# bad values by the annotated type of a parameter: out of range, then wrong types (a callable gets the default)
BAD_BY_TYPE = {
    "int": (-1, "3", True, 2.5),
    "float": (-1.0, "0.5", True, float("nan")),
    "str": ("", 42),
    "list": ([], "x", lambda default: [True, *default]),
    "bool": ("yes", 1),
}
# values that pass their own kind but break a relation or a range: (notebook number, parameter, value)
BAD_RELATIONS = [
    ("02", "SIZES", ["nano"]), ("02", "VOCAB_SIZE", 299),
    ("03", "DISTANCES", [16, 48]), ("03", "DISTANCES", [200, 256]), ("03", "TEMPLATES", ["qa", "poem"]),
    ("04", "SHOTS", [1, 2, 4, 8]), ("04", "SHOTS", [0, 1, 2]), ("04", "LONG_SHOTS", [8, 101]),
    ("05", "RELATION", "city"), ("05", "SWEEP_LRS", [3e-3, 1e-5, 0.3]), ("05", "STEPS", 9),
    ("06", "N_SHOW", 201),
    ("07", "LORA_TARGETS", "mlp"), ("07", "DEVICE", "tpu"), ("07", "DTYPE", "int8"), ("07", "SWEEP_RANKS", [2, 0]),
    ("08", "MODEL_BITS", [8, 4, 3]), ("08", "BITS", [16, 1]),
    ("09", "N_SHOW", 151), ("09", "THRESHOLD", 1.0),
    ("10", "CHUNK_OVERLAP", 200), ("10", "SWEEP_SIZES", [0, 200, 400]), ("10", "SWEEP_SIZES", [80, 200]),
    ("10", "N_POISON", 101), ("10", "COLLECTION", "-x-"),
    ("11", "SWEEP_BETAS", [0.5, 1.5, 3.0]), ("11", "SWEEP_BETAS", [0.0, 1.0, 3.0]),
    ("11", "SWEEP_LAMBDAS", [0.0, 2.0, 3.0]), ("11", "SWEEP_LAMBDAS", [3.0, 1.0, 0.0]), ("11", "N_SHOW", 801),
    ("12", "ALPHAS", [0.0, 0.25, 0.75, 0.9]), ("12", "ALPHAS", [0.0, 0.5, 0.75, 1.0]),
    ("13", "EPOCHS", 21), ("13", "N_TRAIN", 7),
    ("14", "N_CHAIN", 121), ("14", "N_SHOTS", 6401),
    ("15", "N_PEOPLE", 121), ("15", "N_CHAIN", 201), ("15", "PROJECTION", "umap"),
    ("16", "COUNTRY", "fra"), ("16", "MEASURE_POWER_SECS", 61.0),
]


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
        params, _, types = _parameter_cells(path)
        defaults: dict = {}
        exec(params, defaults)
        for name, kind in types.items():
            cases += [(path.stem, name, bad(defaults[name]) if callable(bad) else bad)
                      for bad in BAD_BY_TYPE.get(kind, ())]
        cases += [(path.stem, name, bad) for number, name, bad in BAD_RELATIONS if path.stem.startswith(number)]
    return cases


NOTEBOOK_CASES = _cases()


def test_every_notebook_parameter_is_covered():
    covered = {(nb, name) for nb, name, _ in NOTEBOOK_CASES}
    declared = {(path.stem, name) for path in NOTEBOOKS for name in _parameter_cells(path)[2]}
    assert covered == declared, f"uncovered: {sorted(declared - covered)}, undeclared: {sorted(covered - declared)}"
    assert len(NOTEBOOK_CASES) >= 3 * len(declared) >= 300
    assert {nb[:2] for nb, _, _ in NOTEBOOK_CASES} >= {number for number, _, _ in BAD_RELATIONS}


@pytest.mark.parametrize("notebook, name, bad", NOTEBOOK_CASES, ids=lambda v: repr(v) if not isinstance(v, str)
                         else v)
def test_notebook_validation_cell_rejects(notebook, name, bad):
    params, validation, _ = _parameter_cells(ROOT / "notebooks" / f"{notebook}.ipynb")
    scope: dict = {}
    exec(params, scope)  # the committed defaults
    exec(validation, dict(scope))  # ... pass
    scope[name] = bad
    with pytest.raises(ValueError) as err:
        exec(validation, scope)
    assert str(err.value).startswith(f"{name} must "), f"{notebook}: {name}={bad!r} gave: {err.value}"
    assert repr(bad) in str(err.value), f"{notebook}: the error does not show the value {bad!r}: {err.value}"


def _helper_cases():
    """(label, call, expected message part): each call must raise ValueError/TypeError/FileNotFoundError."""
    from hubhelpers import (
        chains,
        encoders,
        evaluation,
        finetune,
        models,
        prompting,
        results,
        runtime,
        tasks,
        training,
        world,
    )
    from hubhelpers.tooling import bench, course

    w = world.make_world(world.WorldConfig(n_train=12, n_heldout=6))
    return [
        ("world: negative seed", lambda: world.make_world(world.WorldConfig(seed=-1)), "seed"),
        ("world: zero people", lambda: world.make_world(world.WorldConfig(n_train=0)), "n_train"),
        ("world: unknown relation", lambda: world.check_relation("shoe"), "shoe"),
        ("tasks: unknown split", lambda: tasks.closed_book_questions(w, "test"), "'test'"),
        ("tasks: negative shots", lambda: tasks.few_shot_questions(w, k=-1), "k must be"),
        ("tasks: zero passages", lambda: tasks.open_book_questions(w, n_passages=0), "n_passages"),
        ("tasks: n = 0", lambda: tasks.instruction_examples(w, 0), "n must be"),
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
