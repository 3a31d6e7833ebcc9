"""The compatibility matrix: every notebook run on models other than the shipped one, with no download.

Usage::

    python -m hubhelpers.tooling.matrix                     # build the models, run the course on each
    python -m hubhelpers.tooling.matrix --models random-gpt2 --only 01 05
    python -m hubhelpers.tooling.matrix --build-only        # just write the model directories

Three local model directories are built from configs with the course's own code:

- ``rehoused-mistral``: the shipped weights in ``MistralForCausalLM`` (the same maths as Llama here: no sliding
  window, the same RoPE, norms and MLP), so every band, of both kinds, must hold;
- ``random-gpt2``: a randomly initialised GPT-2 (Conv1D layers, learned positions, dropout on) with its own
  byte-level BPE of another vocabulary size, no chat template and no pad token, like a base hub model;
- ``random-gqa-32k``: a randomly initialised Qwen2 (q/k/v biases) with 32,000 tokens and grouped-query attention,
  and a ChatML template without generation markers, like most chat models: memory must stay bounded.

For the random ones every notebook must run to its end with every mechanism band passing. The result is
build/models/MATRIX.md and build/models/matrix.json (notebook x model: passed, shipped-model bands not checked,
failed).
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from hubhelpers import results as R
from hubhelpers.mixture import pretraining_corpus
from hubhelpers.models import SHIPPED_T5, load_model
from hubhelpers.runtime import seed_everything
from hubhelpers.tooling import course
from hubhelpers.tooling.sync import update_readme_column
from hubhelpers.world import make_world

MATRIX_DIR = "models"
README_COLUMN = "other models"
# A notebook without a causal-LM MODEL parameter (02 trains its own model, 13's model is its ENCODER, 17's MODEL is an
# encoder-decoder) runs as by default.
NO_MODEL = {"status": "not applicable", "ran_to_end": None, "failed_bands": [], "all_bands": False,
            "not_checked": 0, "not_checked_outside": []}
CHATML_TEMPLATE = (  # ChatML, as many chat models write it: no {% generation %} markers
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class MatrixModel:
    """One column of the matrix: how its directory is built and what must hold for it."""

    name: str
    about: str
    build: Callable[[Path], None]
    all_bands: bool  # True: every band (both kinds) must hold; False: the mechanism bands and running to the end


def tinyworld_texts(n: int = 3000, seed: int = 12345) -> list[str]:
    """A sample of the pretraining stream (what the shipped tokenizer was trained on)."""
    return [ex.text for ex in pretraining_corpus(make_world(), n, seed=seed)]


def random_words(n: int, seed: int) -> list[str]:
    """`n` lines of made-up words: text that no TinyWorld document holds, to fill a large vocabulary."""
    rng = random.Random(seed)
    letters = string.ascii_lowercase
    return [" ".join("".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(12)) for _ in range(n)]


def byte_level_tokenizer(texts: Sequence[str], vocab_size: int, special: Sequence[str], **kwargs: Any):
    """A byte-level BPE trained on `texts` (no BOS added, as GPT-2 and Qwen2 do), wrapped for transformers."""
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **kwargs)


def save(model, tokenizer, out: Path, about: str) -> None:
    """Write `model` (safetensors) and `tokenizer` to `out`, with a one-line README saying what it is."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text(f"# {out.name}\n\n{about}\nBuilt by `make models` (hubhelpers.tooling.matrix).\n")


def build_rehoused_mistral(out: Path) -> None:
    """The shipped weights in MistralForCausalLM; its logits equal the shipped model's (checked here)."""
    llama, tokenizer = load_model("tinyworld", device="cpu")
    c = llama.config
    config = MistralConfig(vocab_size=c.vocab_size, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
                           num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
                           num_key_value_heads=c.num_key_value_heads, head_dim=c.head_dim,
                           max_position_embeddings=c.max_position_embeddings, rms_norm_eps=c.rms_norm_eps,
                           rope_theta=c.rope_parameters["rope_theta"], sliding_window=None, tie_word_embeddings=True,
                           bos_token_id=c.bos_token_id, eos_token_id=c.eos_token_id, pad_token_id=c.pad_token_id)
    mistral = MistralForCausalLM(config)
    mistral.load_state_dict(llama.state_dict(), strict=True)
    mistral.eval()
    ids = tokenizer(["Ada Moreau lives in", "Q: What is 2 + 2?\nA:"], return_tensors="pt", padding=True)
    with torch.inference_mode():
        diff = (mistral(**ids).logits - llama(**ids).logits).abs().max().item()
    if diff > 1e-5:
        raise RuntimeError(f"re-housed Mistral differs from the shipped model by {diff:.2e} in its logits")
    save(mistral, tokenizer, out, "The shipped TinyWorld weights in MistralForCausalLM (identical logits).")


def build_random_gpt2(out: Path, seed: int = 0) -> None:
    """A random GPT-2 (2 layers, 64 wide) with its own 768-token byte-level BPE, no pad token, no chat template."""
    seed_everything(seed)
    tokenizer = byte_level_tokenizer(tinyworld_texts(), 768, ["<|endoftext|>"], bos_token="<|endoftext|>",
                                     eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=64, n_layer=2, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    save(GPT2LMHeadModel(config), tokenizer, out,
         "A randomly initialised GPT-2 (Conv1D layers, learned positions, dropout 0.1) with its own byte-level BPE "
         f"of {len(tokenizer)} tokens, no chat template and no pad token, like a base hub model.")


def build_random_gqa_32k(out: Path, seed: int = 0) -> None:
    """A random Qwen2 (GQA: 4 query heads share 2 key/value heads) with 32,000 tokens and a ChatML template."""
    seed_everything(seed)
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tokenizer = byte_level_tokenizer(tinyworld_texts() + random_words(60_000, seed), 32_000, special,
                                     eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                     additional_special_tokens=special[1:], chat_template=CHATML_TEMPLATE)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    save(Qwen2ForCausalLM(config), tokenizer, out,
         f"A randomly initialised Qwen2 with grouped-query attention (4 query heads, 2 key/value heads) and "
         f"{len(tokenizer):,} tokens, with a ChatML chat template that has no generation markers.")


MODELS = {
    m.name: m for m in (
        MatrixModel("rehoused-mistral", "the shipped weights in Mistral's architecture", build_rehoused_mistral, True),
        MatrixModel("random-gpt2", "random GPT-2, own tokenizer, no chat template, no pad", build_random_gpt2, False),
        MatrixModel("random-gqa-32k", "random Qwen2, 32k vocabulary, GQA, ChatML", build_random_gqa_32k, False),
    )
}


# --------------------------------------------------------------------------- the verdict
def cell_verdict(ran: bool, bands: Mapping[str, Any], all_bands: bool) -> dict[str, Any]:
    """One notebook x model cell: 'passed', 'passed (N shipped-model bands not checked)' or 'failed' and why."""
    failed = course.checked_failures(bands)
    unchecked = [n for n, b in bands.items() if not b.get("checked", True)]
    outside = [n for n in unchecked if not bands[n]["passed"]]
    if all_bands:
        failed += outside
    status = "passed" if ran and not failed else "failed"
    return {"status": status, "ran_to_end": ran, "failed_bands": sorted(failed), "all_bands": all_bands,
            "not_checked": len(unchecked), "not_checked_outside": sorted(outside)}


def verdict_text(cell: Mapping[str, Any]) -> str:
    """The MATRIX.md text of one cell."""
    if cell["status"] == NO_MODEL["status"]:
        return "no causal-LM MODEL parameter (trains its own / uses ENCODER / a seq2seq MODEL): the default run"
    if cell["status"] == "failed":
        why = ", ".join(cell["failed_bands"]) or "stopped before its end"
        return f"❌ failed: {why}"
    if cell["not_checked"] and cell.get("all_bands"):
        return f"✅ passed · its {cell['not_checked']} shipped-model bands hold too"
    if cell["not_checked"]:
        return f"✅ passed · {cell['not_checked']} shipped-model bands not checked"
    return "✅ passed"


def render_matrix(matrix: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """MATRIX.md: one row a notebook, one column a model."""
    names = [n for n in MODELS if n in matrix] + [n for n in matrix if n not in MODELS]
    notebooks = sorted({nb for column in matrix.values() for nb in column})
    lines = ["# Notebooks x models", "",
             "Built by `make models`. *Shipped-model bands not checked*: bands of what the TinyWorld model shows, "
             "recorded and reported for another model, not raised (see build/models/<model>/REPORT.md).", ""]
    lines += [f"- **{n}**: {MODELS[n].about}" + (" (every band must hold)" if MODELS[n].all_bands else "")
              for n in names if n in MODELS]
    lines += ["", "| notebook | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for nb in notebooks:
        cells = [verdict_text(matrix[n][nb]) if nb in matrix[n] else "–" for n in names]
        lines.append(f"| {nb} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def readme_cells(matrix: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, str]:
    """The README course map's 'other models' cells: one mark a model, in MODELS order ('07': '✅ ✅ ❌')."""
    marks = {"passed": "✅", "failed": "❌", NO_MODEL["status"]: "–"}
    notebooks = sorted({nb for column in matrix.values() for nb in column})
    return {nb[:2]: " ".join(marks[matrix[m][nb]["status"]] for m in MODELS) for nb in notebooks
            if all(nb in matrix.get(m, {}) for m in MODELS)}


def takes_causal_model(notebook: Path) -> bool:
    """True when the notebook's MODEL parameter is a causal LM: it has one and its default is not the shipped T5."""
    if "MODEL" not in course.declared_parameters(notebook):
        return False
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    return f'MODEL: str = "{SHIPPED_T5}"' not in source


def run_model(model: MatrixModel, root: Path, only: Sequence[str]) -> dict[str, Any]:
    """Run the course (or `only` some notebooks) with MODEL = this model's directory; return its matrix column."""
    model_dir, build_dir = root / model.name / "model", root / model.name / "build"
    notebooks = course.discover_notebooks((R.find_project_root() or Path.cwd()) / "notebooks", only)
    takes_model = [nb for nb in notebooks if takes_causal_model(nb)]
    runs = course.run_course(takes_model, build_dir, "python3", ["-p", "MODEL", str(model_dir)], course.DEFAULT_JOBS)
    course.write_report(runs, build_dir)
    bands = R.load_bands(build_dir)
    column = {nb.stem: NO_MODEL for nb in notebooks if nb not in takes_model}
    return column | {run.name: cell_verdict(run.ok, bands.get(run.name, {}), model.all_bands) for run in runs}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The matrix's options."""
    parser = argparse.ArgumentParser(prog="python -m hubhelpers.tooling.matrix", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--only", nargs="+", default=[], metavar="NB", help="notebooks: number prefix, stem or glob")
    parser.add_argument("--build-dir", type=Path, default=None, help="default: build/")
    parser.add_argument("--build-only", action="store_true", help="write the model directories and stop")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the models, run the notebooks on each, write MATRIX.md and matrix.json; 1 if a cell failed."""
    args = parse_args(argv)
    root = (args.build_dir or R.find_build_dir()).resolve() / MATRIX_DIR
    for name in args.models:
        out = root / name / "model"
        if not (out / "config.json").is_file():
            print(f"building {name} in {R.display_path(out)}", flush=True)
            MODELS[name].build(out)
    if args.build_only:
        return 0
    path = root / "matrix.json"
    matrix = R.read_json(path)
    for name in args.models:
        matrix[name] = {**matrix.get(name, {}), **run_model(MODELS[name], root, args.only)}
    R.write_json_atomic(path, matrix)
    (root / "MATRIX.md").write_text(render_matrix(matrix), encoding="utf-8")
    readme = (R.find_project_root() or Path.cwd()) / "README.md"
    if readme_cells(matrix) and readme.is_file():  # the README's column, for notebooks every model has run
        text = readme.read_text(encoding="utf-8")
        readme.write_text(update_readme_column(text, README_COLUMN, readme_cells(matrix)), encoding="utf-8")
    failed = [(m, nb) for m, column in matrix.items() for nb, cell in column.items() if cell["status"] == "failed"]
    print(f"matrix: {R.display_path(root / 'MATRIX.md')}; " + (f"{len(failed)} failed: {failed}" if failed else
                                                                "every cell passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
