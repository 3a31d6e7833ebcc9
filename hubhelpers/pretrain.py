"""Pretrain the TinyWorld base model from scratch (`make base-model` = `python -m hubhelpers.pretrain`)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import carbon, mixture, tasks
from . import world as W
from .evaluation import answer_accuracy, first_token_accuracy
from .models import (
    PRESETS,
    ModelConfig,
    build_model,
    count_parameters,
    load_tokenizer,
    shipped_model_dir,
    train_tokenizer,
)
from .training import TrainConfig, TrainResult, train

GATES = {  # figure: (kind, bound) -- the capability gates the shipped checkpoint must pass
    "closed_book_train_acc": ("at_least", 0.95),
    "open_book_heldout_acc": ("at_least", 0.90),
    "closed_book_heldout_margin": ("at_most", 0.10),
    "few_shot_gain_8_vs_0": ("at_least", 0.30),
}
BASE_COMMAND = "make base-model"


@dataclass(frozen=True)
class PretrainConfig:
    """Everything that defines a pretraining run: world, tokenizer, model shape, data mixture, optimisation."""

    world: W.WorldConfig = W.WorldConfig()
    vocab_size: int = 1024
    tokenizer_corpus: int = 20000
    model: ModelConfig = PRESETS["base"]
    mix: mixture.Mixture = mixture.Mixture()
    # a short first run on repetition, then reading only (mixture.foundation_example), with its own schedule
    foundation: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=2050, batch_size=32, lr=3e-3, warmup_steps=100, eval_every=250, checkpoint_every=250))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=7000, batch_size=48, lr=3e-3, warmup_steps=200, eval_every=500, checkpoint_every=250))


def build_tokenizer(world: W.World, cfg: PretrainConfig):
    """Train the BPE tokenizer on a sample of the pretraining stream (held-out people never appear in it).

    The sample is drawn from the early-phase mixture (no reading focus), so the tokenizer does not depend on
    when the focus phase starts.
    """
    mix = dataclasses.replace(cfg.mix, focus_after=1.0)
    texts = [ex.text for ex in mixture.pretraining_corpus(world, cfg.tokenizer_corpus, seed=12345, mix=mix)]
    return train_tokenizer(texts, cfg.vocab_size)


def batch_sampler(world: W.World, mix: mixture.Mixture, example=mixture.pretraining_example):
    """sample_batch(rng, progress, size) for the training loop, drawing from `example(world, rng, progress, mix)`."""
    def sample(rng: random.Random, progress: float, size: int) -> list[W.Example]:
        return [example(world, rng, progress, mix) for _ in range(size)]
    return sample


def quick_eval(world: W.World, tokenizer, n: int = 64):
    """A fast in-training probe: first-token accuracy on each capability."""
    sets = {
        "closed_train": tasks.closed_book_questions(world, "train", n, seed=7),
        "open_1": tasks.open_book_questions(world, n, 1, seed=7),
        "open_2": tasks.open_book_questions(world, n, 2, seed=7),
        "open_3": tasks.open_book_questions(world, n, 3, seed=7),
        "shot_0": tasks.few_shot_questions(world, 0, n, seed=7),
        "shot_8": tasks.few_shot_questions(world, 8, n, seed=7),
    }
    return lambda model: {k: round(first_token_accuracy(model, tokenizer, v), 3) for k, v in sets.items()}


def capability_figures(model, tokenizer, world: W.World, n: int = 300) -> dict:
    """Greedy-decoding accuracies behind the gates (fixed evaluation seed 0, n questions each)."""
    def accuracy(examples) -> float:
        """Greedy exact-match accuracy of the model on `examples`."""
        return answer_accuracy(model, tokenizer, examples)[0]

    closed_held = tasks.closed_book_questions(world, "heldout", n)
    figs = {
        "closed_book_train_acc": accuracy(tasks.closed_book_questions(world, "train", n)),
        "open_book_heldout_acc": accuracy(tasks.open_book_questions(world, n, (2, 3))),
        "open_book_heldout_acc_1_passage": accuracy(tasks.open_book_questions(world, n, 1)),
        "open_book_heldout_acc_4_passages": accuracy(tasks.open_book_questions(world, n, 4)),
        "closed_book_heldout_acc": accuracy(closed_held),
        "closed_book_heldout_majority": tasks.majority_baseline(closed_held),
        "few_shot_acc_0": accuracy(tasks.few_shot_questions(world, 0, n)),
        "few_shot_acc_8": accuracy(tasks.few_shot_questions(world, 8, n)),
    }
    figs["closed_book_heldout_margin"] = figs["closed_book_heldout_acc"] - figs["closed_book_heldout_majority"]
    figs["few_shot_gain_8_vs_0"] = figs["few_shot_acc_8"] - figs["few_shot_acc_0"]
    return {k: round(v, 4) for k, v in figs.items()}


def gate_failure(name: str, value: float, gates: dict | None = None) -> str | None:
    """A description of how `value` fails gate `name` (of `gates`, default GATES), or None when it passes."""
    kind, bound = (GATES if gates is None else gates)[name]
    if (kind == "at_least" and value < bound) or (kind == "at_most" and value > bound):
        return f"{name}={value} ({kind.replace('_', ' ')} {bound})"
    return None


def failed_gates(figures: dict, gates: dict | None = None) -> list[str]:
    """Descriptions of the gates (default GATES) that `figures` fail (empty when all pass)."""
    gates = GATES if gates is None else gates
    return [msg for name in gates if (msg := gate_failure(name, figures[name], gates)) is not None]


def pretrain(cfg: PretrainConfig, checkpoint_dir: str | Path | None = None, progress: bool = True,
             evaluate: bool = True):
    """Train tokenizer and model for `cfg`; returns (model, tokenizer, world, TrainResult)."""
    torch.manual_seed(cfg.train.seed)
    world = W.make_world(cfg.world)
    tokenizer = build_tokenizer(world, cfg)
    model = build_model(cfg.model, tokenizer)
    probe = quick_eval(world, tokenizer) if evaluate else None
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    first = train(model, tokenizer, batch_sampler(world, cfg.mix, mixture.foundation_example), cfg.foundation, probe,
                  None if ckpt is None else ckpt / "foundation", progress)
    second = train(model, tokenizer, batch_sampler(world, cfg.mix), cfg.train, probe,
                   None if ckpt is None else ckpt / "main", progress)
    return model, tokenizer, world, joined(first, second, cfg.foundation.steps)


def joined(first: TrainResult, second: TrainResult, offset: int) -> TrainResult:
    """Two consecutive runs as one: the second's steps numbered on from `offset`, totals added."""
    shift = [{**h, "step": h["step"] + offset} for h in second.history]
    return TrainResult(first.history + shift, first.evals + [{**e, "step": e["step"] + offset} for e in second.evals],
                       first.tokens_seen + second.tokens_seen, first.wall_s + second.wall_s,
                       {k: first.phase_s.get(k, 0.0) + second.phase_s.get(k, 0.0) for k in first.phase_s})


def write_model_dir(model, tokenizer, out: Path, card: dict, render=None) -> None:
    """Save model (safetensors), tokenizer and card into `out`, replacing it atomically (README by `render`)."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    write_card(tmp, card, render)
    if out.exists():
        shutil.rmtree(out)
    tmp.replace(out)


def write_card(directory: Path, card: dict, render=None) -> None:
    """Write card.json and the README.md that `render` (default render_card) makes of it into `directory`."""
    (directory / "card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    (directory / "README.md").write_text((render or render_card)(card))


def _reading_sentence(figures: dict) -> str:
    """The card's one-line summary of reading from context, true to the measured figures."""
    if gate_failure("open_book_heldout_acc", figures["open_book_heldout_acc"]) is None:
        return ("It reads an answer out of a context of several passages about people it has never seen, by\n"
                "matching the asked name: see `open_book_heldout_acc` below.")
    return ("It reads an answer out of a single context passage; with several passages (where\n"
            "the person's name must be matched) it is far weaker: see `open_book_heldout_acc` below.")


CARD_LICENSE = {"license": "other", "license_name": "none-chosen-yet"}  # the project has not chosen a license yet


def front_matter(card: dict, pipeline_tag: str) -> str:
    """The card's Hugging Face metadata (YAML between '---' lines): license, tags, data, emissions when known."""
    from huggingface_hub import ModelCardData

    co2 = card.get("co2_eq_emissions")
    order = ("emissions", "source", "training_type", "geographical_location", "hardware_used")  # the card format's
    data = ModelCardData(**CARD_LICENSE, library_name="transformers", pipeline_tag=pipeline_tag,
                         tags=["llm-hub", "tinyworld", "course"], datasets=["tinyworld"],
                         co2_eq_emissions=None if co2 is None else {k: co2[k] for k in order if k in co2})
    return f"---\n{data.to_yaml()}\n---\n\n"


def emissions_line(card: dict) -> str:
    """The card's sentence on the training run's emissions (what the metadata's co2_eq_emissions says, in words)."""
    co2 = card.get("co2_eq_emissions")
    if co2 is None:
        return "- Emissions of the training run: not recorded."
    return (f"- Emissions of the training run: {co2['emissions']:g} g CO2eq ({co2['source']}; "
            f"{co2['geographical_location']}). Notebook 16 shows how these are measured and read.")


INTENDED_USE = """## Intended use and limits

- **Intended use**: teaching. The notebooks of llm-hub use it to show, offline on a laptop CPU, what large models
  do (probability, prompting, fine-tuning, quantization, hallucination, retrieval, ...), with effects measured
  against a world whose truth is known.
- **Out of scope**: any use outside the course. It knows only TinyWorld, a generated world of invented people and
  towns; it answers about a real person with the fluency of a fact and no truth (notebook 09 measures this).
- **Language**: English sentences of TinyWorld's templates; its tokenizer was fitted to them, so other languages
  cost several times the tokens (notebook 18).
- **Bias**: every fact of the world is drawn uniformly and independently, so its pretraining text carries no
  association between where a person lives and their job. Notebook 19 shows how a fine-tuning set with such a skew
  teaches one, how to measure it against the world's true rates, and what mitigation costs.
"""


def render_card(card: dict) -> str:
    """The model card as Markdown, with Hugging Face metadata."""
    rows = "\n".join(f"| {k} | {v} | {GATES.get(k, ('', ''))[0].replace('_', ' ')} {GATES.get(k, ('', ''))[1]} |"
                     for k, v in card["figures"].items())
    return front_matter(card, "text-generation") + f"""# TinyWorld base model

A {card['parameters']:,}-parameter Llama-architecture causal LM (`LlamaForCausalLM`) pretrained from scratch on
TinyWorld (generator `{card['generator_version']}`, fingerprint `{card['world_fingerprint']}`) by the course's
own code. It knows the facts of the world's training people, has never seen the held-out people, and picks up
a task from a few examples. {_reading_sentence(card['figures'])}

- Re-train: `{card['command']}` (seed {card['seed']}, {card['steps']} steps: {card['foundation']['steps']} of
  {card['foundation']['batch_size']} examples, then {card['train']['steps']} of {card['batch_size']};
  {card['tokens_seen']:,} tokens, {card['wall_minutes']} minutes on {card['machine']}).
- Final training loss {card['final_loss']}; model shape `{json.dumps(card['model'])}`.
{emissions_line(card)}
- Objective: next-token loss on passages; on answers only for question/answer, look-up and few-shot examples,
  each example weighted equally. Curriculum: a first run of {card['foundation']['steps']} steps (its own warm-up and
  cosine schedule) copies repeated word sequences for {card['mix']['repeat_until']:.0%} of its steps (this grows the
  induction circuit that reading by name builds on), then reads: open-book questions over 1 to
  {card['mix']['max_passages']} passages, `name: value` look-ups and fixed-wording reading, in equal shares, with
  {card['mix']['keep_repeating']:.0%} repeated sequences kept so the circuit is not overwritten. The main run trains
  the full mix (repeated sequences {card['mix']['repeat']:.0%}); from {int(card['mix']['focus_after'] * 100)}% of its
  steps on, open-book reading is {card['mix']['focus_open_book']:.0%} of the examples
  (from {card['mix']['open_book']:.0%}).

| figure (greedy decoding, {card['n_eval']} questions each) | value | gate |
|---|---|---|
{rows}

{INTENDED_USE}"""


def ship_command(argv: list[str] | None, description: str, cfg, checkpoint_dir: str, out: Path, run, figures_of,
                 card_of, render=None, gates: dict | None = None) -> None:
    """The `make base-model` style command: pretrain `cfg` with `run`, measure, write the model dir, report gates."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=None, help="override the number of training steps")
    parser.add_argument("--checkpoint-dir", default=checkpoint_dir)
    parser.add_argument("--out", default=str(out))
    parser.add_argument("--country", default=carbon.DEFAULT_COUNTRY,
                        help="ISO code of the grid assumed for the emissions (CodeCarbon)")
    args = parser.parse_args(argv)
    if args.steps is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(
            cfg.train, steps=args.steps, warmup_steps=min(cfg.train.warmup_steps, args.steps)))
    tracked = carbon.track(lambda: run(cfg, args.checkpoint_dir), Path(args.checkpoint_dir).parent / "codecarbon",
                           country_iso_code=args.country)
    model, tokenizer, world, result = tracked.result
    figures = figures_of(model, tokenizer, world)
    print(json.dumps(figures, indent=2))
    card = card_of(cfg, model, result, figures)
    resumed = result.wall_s > tracked.duration_s  # a resumed run: the tracker saw only its last part
    card["co2_eq_emissions"] = (carbon.estimated_card_emissions(tracked, result.wall_s, args.country, hardware())
                                if resumed else carbon.tracked_card_emissions(tracked, args.country, hardware()))
    write_model_dir(model, tokenizer, Path(args.out), card, render)
    failures = failed_gates(figures, gates)
    print("gates:", "all passed" if not failures else "FAILED " + "; ".join(failures))


def main(argv: list[str] | None = None) -> None:
    """Command line: pretrain, check the gates, and ship the checkpoint into the package."""
    ship_command(argv, __doc__, PretrainConfig(), "build/pretrain/checkpoint", shipped_model_dir(), pretrain,
                 capability_figures, make_card)


def hardware() -> str:
    """What trains here, for the card: CPU threads and any GPU."""
    gpu = f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads{gpu}"


def estimate_card_emissions(card_dir: Path, probe_steps: int = 150,
                            country_iso_code: str = carbon.DEFAULT_COUNTRY, render=None) -> dict:
    """Fill a card's co2_eq_emissions from its recorded wall time and the power of a probe of the same training.

    For a checkpoint trained before its runs were tracked: `probe_steps` steps of the main phase of
    `PretrainConfig()` run under CodeCarbon, and their mean power times the card's wall time is the estimate.
    The weights are not touched; card.json and README.md are rewritten.
    """
    card = json.loads((card_dir / "card.json").read_text())
    cfg = PretrainConfig()
    world, tokenizer = W.make_world(cfg.world), load_tokenizer(str(card_dir))
    model = build_model(cfg.model, tokenizer)
    probe_cfg = dataclasses.replace(cfg.train, steps=probe_steps, warmup_steps=min(cfg.train.warmup_steps, probe_steps),
                                    eval_every=10 * probe_steps, checkpoint_every=10 * probe_steps)
    probe = carbon.track(lambda: train(model, tokenizer, batch_sampler(world, cfg.mix), probe_cfg),
                         Path("build") / "codecarbon-probe", country_iso_code=country_iso_code)
    card["co2_eq_emissions"] = carbon.estimated_card_emissions(probe, card["wall_minutes"] * 60, country_iso_code,
                                                               hardware())
    write_card(card_dir, card, render)
    return card["co2_eq_emissions"]


def make_card(cfg: PretrainConfig, model, result: TrainResult, figures: dict) -> dict:
    """The card's facts: command, seed, budget, wall time, losses, figures and the world fingerprint."""
    return {
        "command": BASE_COMMAND, "seed": cfg.train.seed, "steps": cfg.foundation.steps + cfg.train.steps,
        "batch_size": cfg.train.batch_size, "foundation": dataclasses.asdict(cfg.foundation),
        "tokens_seen": result.tokens_seen,
        "wall_minutes": round(result.wall_s / 60, 1), "machine": f"{platform.machine()} CPU",
        "final_loss": round(sum(result.losses[-100:]) / len(result.losses[-100:]), 4),
        "parameters": count_parameters(model), "model": dataclasses.asdict(cfg.model),
        "train": dataclasses.asdict(cfg.train), "mix": dataclasses.asdict(cfg.mix),
        "world": dataclasses.asdict(cfg.world), "generator_version": W.GENERATOR_VERSION,
        "world_fingerprint": mixture.fingerprint(cfg.world), "figures": figures, "n_eval": 300,
        "evals": result.evals, "loss_curve": result.losses[::50], "created": time.strftime("%Y-%m-%d"),
    }


if __name__ == "__main__":
    main()
