"""Pretrain TinyWorld's encoder-decoder (T5) with span corruption (`make base-model-t5`).

The shipped seq2seq model of notebook 17, next to the decoder-only one (pretrain.py): the same world and tokenizer
plus T5's sentinels, no task data. It sees bios of the world's training people (their facts), bios of freshly
invented people (names it can only copy from the passage) and the dialogues of `dialogue.py` about training people,
as raw text; never a summary, never a held-out person.

Two runs, as the decoder-only model's foundation run grows its copying circuit first: a short run in which the
target is the whole passage, rebuilt from its span-corrupted input (BART's text infilling, Lewis et al. 2020), so
that cross-attention learns to copy from the input; then T5's own objective, span corruption, where the target is
only the hidden spans. Measured on a 2-core CPU: after 1,800 steps of span corruption alone the model filled every
gap with frequent words ("colour") and copied no name; 400 infilling steps were enough to copy a never-seen name.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import mixture, pretrain
from . import world as W
from .dialogue import dialogues
from .models import count_parameters, load_tokenizer, shipped_t5_dir
from .pretrain import joined
from .seq2seq import (
    Seq2SeqShape,
    add_sentinels,
    build_t5,
    fill_spans,
    pad_pairs,
    sentinel_ids,
    seq2seq_loss,
    span_corruption,
    word_start_flags,
)
from .training import TrainConfig, TrainResult, train

BASE_T5_COMMAND = "make base-model-t5"
GATES = {  # figure: (kind, bound) -- what the shipped checkpoint must do
    "name_fill_fresh_acc": ("at_least", 0.90),  # copy a never-seen name from its passage into the masked span
    "fact_fill_train_acc": ("at_least", 0.50),  # recall a training person's fact from memory
}


@dataclass(frozen=True)
class T5PretrainConfig:
    """Everything that defines the seq2seq pretraining run."""

    world: W.WorldConfig = W.WorldConfig()
    shape: Seq2SeqShape = Seq2SeqShape()
    share_fresh: float = 0.3  # passages about invented people
    share_dialogue: float = 0.3  # raw dialogues about training people (the rest: bios of training people)
    noise_density: float = 0.15
    mean_span: float = 2.0  # in words (whole_words) or tokens
    whole_words: bool = True  # spans never cut a word: a name of several tokens is hidden whole (whole-word masking)
    n_dialogues: int = 4000  # the pool the dialogue passages are drawn from
    # first run: rebuild the whole passage from its corrupted input (copying through cross-attention)
    foundation: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=1200, batch_size=32, lr=3e-3, warmup_steps=50, eval_every=10**9, checkpoint_every=200, max_len=256))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=2000, batch_size=48, lr=3e-3, warmup_steps=100, eval_every=500, checkpoint_every=250, max_len=256))


def passage(world: W.World, pool: list, cfg: T5PretrainConfig, rng: random.Random) -> str:
    """One pretraining passage: a dialogue, or bios of one or two training or freshly invented people."""
    roll = rng.random()
    if roll < cfg.share_dialogue:
        return rng.choice(pool).text
    fresh = roll < cfg.share_dialogue + cfg.share_fresh
    people = [W.random_person(rng, W.fresh_name(rng, world)) if fresh else rng.choice(world.train)
              for _ in range(rng.choice((1, 1, 2)))]
    return " ".join(W.bio(p, rng) for p in people)


def span_sampler(world: W.World, tokenizer, cfg: T5PretrainConfig, max_len: int, rebuild: bool = False):
    """sample_batch(rng, progress, size) for training.train: span-corrupted passages (first max_len tokens), padded.

    The target is the hidden spans (T5), or with `rebuild` the whole original passage (BART's text infilling).
    """
    pool, sentinels, eos = dialogues(world, cfg.n_dialogues, seed=0), sentinel_ids(tokenizer), tokenizer.eos_token_id

    def sample(rng: random.Random, progress: float, size: int) -> dict:
        pairs = []
        for _ in range(size):
            ids = tokenizer(passage(world, pool, cfg, rng), add_special_tokens=False)["input_ids"][:max_len]
            starts = word_start_flags(tokenizer, ids) if cfg.whole_words else None
            source, target = span_corruption(ids, sentinels, rng, cfg.noise_density, cfg.mean_span, starts)
            pairs.append(([*source, eos], [*(ids if rebuild else target), eos]))
        return pad_pairs(pairs, tokenizer.pad_token_id)

    return sample


def masked(text: str, at: int, word: str) -> tuple[str, str]:
    """(source, answer): `text` with `word` (found at index `at`) and the space before it replaced by <extra_id_0>.

    The space goes with the hidden span, as in span corruption, where a sentinel replaces whole tokens (' Arvel').
    """
    return f"{text[:at].rstrip(' ')}<extra_id_0>{text[at + len(word):]}", word


def fill_probes(world: W.World, n: int, seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    """Masked-span probes: a fresh person's name in its second sentence (copy), a training person's fact (recall)."""
    rng = random.Random(f"t5-probes-{seed}")
    names, facts = [], []
    for _ in range(n):
        p = W.random_person(rng, W.fresh_name(rng, world))
        first, second = W.sentence(p, "city", rng), W.sentence(p, "job", rng)
        text = f"{first} {second}"
        names.append(masked(text, text.index(p.name, len(first)), p.name))
        q = rng.choice(world.train)
        relation = rng.choice(W.PRETRAIN_RELATIONS)
        text = W.sentence(q, relation, rng)
        facts.append(masked(text, text.rindex(q[relation]), q[relation]))
    return {"name_fill_fresh_acc": names, "fact_fill_train_acc": facts}


def capability_figures(model, tokenizer, world: W.World, n: int = 200) -> dict:
    """Accuracy of the greedy fill of one masked span, per probe kind (fill_probes)."""
    figures = {}
    for name, probes in fill_probes(world, n).items():
        outputs = fill_spans(model, tokenizer, [s for s, _ in probes])
        figures[name] = round(sum(o.strip() == t for o, (_, t) in zip(outputs, probes)) / len(probes), 4)
    return figures


def pretrain_t5(cfg: T5PretrainConfig, checkpoint_dir: str | Path | None = None, progress: bool = True):
    """Train a T5 on span corruption with the shipped tokenizer plus sentinels; (model, tokenizer, world, result)."""
    torch.manual_seed(cfg.train.seed)
    world = W.make_world(cfg.world)
    tokenizer = add_sentinels(load_tokenizer())
    model = build_t5(cfg.shape, tokenizer)

    def probe(m) -> dict:
        return capability_figures(m, tokenizer, world, n=64)

    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    rebuild = span_sampler(world, tokenizer, cfg, cfg.foundation.max_len, rebuild=True)
    first = train(model, tokenizer, rebuild, cfg.foundation, None, None if ckpt is None else ckpt / "foundation",
                  progress, loss_fn=seq2seq_loss)
    second = train(model, tokenizer, span_sampler(world, tokenizer, cfg, cfg.train.max_len), cfg.train, probe,
                   None if ckpt is None else ckpt / "main", progress, loss_fn=seq2seq_loss)
    return model, tokenizer, world, joined(first, second, cfg.foundation.steps)


def make_card(cfg: T5PretrainConfig, model, result: TrainResult, figures: dict) -> dict:
    """The card's facts: command, seed, budget, wall time, losses, figures and the world fingerprint."""
    return {
        "command": BASE_T5_COMMAND, "seed": cfg.train.seed, "steps": cfg.foundation.steps + cfg.train.steps,
        "batch_size": cfg.train.batch_size, "foundation": dataclasses.asdict(cfg.foundation),
        "train": dataclasses.asdict(cfg.train),
        "wall_minutes": round(result.wall_s / 60, 1), "machine": f"{platform.machine()} CPU",
        "final_loss": round(sum(result.losses[-100:]) / len(result.losses[-100:]), 4),
        "parameters": count_parameters(model), "shape": dataclasses.asdict(cfg.shape),
        "objective": {"noise_density": cfg.noise_density, "mean_span": cfg.mean_span, "whole_words": cfg.whole_words,
                      "share_fresh": cfg.share_fresh, "share_dialogue": cfg.share_dialogue},
        "world": dataclasses.asdict(cfg.world), "generator_version": W.GENERATOR_VERSION,
        "world_fingerprint": mixture.fingerprint(cfg.world), "figures": figures, "gates": GATES, "n_eval": 200,
        "evals": result.evals, "loss_curve": result.losses[::50], "created": time.strftime("%Y-%m-%d"),
    }


def render_card(card: dict) -> str:
    """The model card as Markdown."""
    rows = "\n".join(f"| {k} | {v} | {' '.join(str(x) for x in card['gates'].get(k, ('', ''))).replace('_', ' ')} |"
                     for k, v in card["figures"].items())
    obj = card["objective"]
    return f"""# TinyWorld seq2seq base model (T5)

A {card['parameters']:,}-parameter encoder-decoder (`T5ForConditionalGeneration`, shape `{json.dumps(card['shape'])}`)
pretrained from scratch by the course's own code on TinyWorld (generator `{card['generator_version']}`, fingerprint
`{card['world_fingerprint']}`) with T5's objective, span corruption, after a first run of copying: about
{obj['noise_density']:.0%} of each passage hidden in spans of mean length {obj['mean_span']:g}
{'words (whole-word masking: a span never cuts a word)' if obj.get('whole_words') else 'tokens'}, each span
replaced by a sentinel (`<extra_id_0>`, ...) that the decoder must fill. It shares the decoder-only model's
tokenizer, plus the sentinels.

Passages: bios of the world's training people, bios of freshly invented people ({obj['share_fresh']:.0%}: names it
can only copy from the passage) and raw two-person dialogues about training people ({obj['share_dialogue']:.0%});
never a summary, an instruction or a held-out person. So, like T5 before FLAN, it fills gaps but follows no
instruction: notebook 17 measures what instruction tuning adds.

- Re-train: `{card['command']}` (seed {card['seed']}, {card['steps']} steps: {card['foundation']['steps']} of
  {card['foundation']['batch_size']} passages rebuilt whole from their corrupted input (BART's text infilling: this
  first run teaches cross-attention to copy), then {card['train']['steps']} of {card['batch_size']} passages of span
  corruption; {card['wall_minutes']} minutes on {card['machine']}); final training loss {card['final_loss']}.
- Why shipped rather than trained inside the notebook: measured on the notebook's budget, see notebook 17.

| figure (greedy fill of one masked span, {card['n_eval']} probes each) | value | gate |
|---|---|---|
{rows}
"""


def failed_gates(figures: dict) -> list[str]:
    """Descriptions of the gates that `figures` fail (empty when all pass)."""
    return pretrain.failed_gates(figures, GATES)


def main(argv: list[str] | None = None) -> None:
    """Command line: pretrain, check the gates, and ship the checkpoint into the package."""
    pretrain.ship_command(argv, __doc__.split("\n")[0], T5PretrainConfig(), "build/pretrain-t5/checkpoint",
                          shipped_t5_dir(), pretrain_t5, capability_figures, make_card, render_card, GATES)


if __name__ == "__main__":
    main()
