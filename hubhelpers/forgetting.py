"""Catastrophic forgetting and its mitigations: the weighted objective alpha * L_A + (1 - alpha) * L_B
(rehearsal), an L2 anchor to the initial weights, and LoRA (a frozen base).

Task A is what the model already does (closed-book facts from pretraining); task B is new (a reserved relation).
`train_tasks` fine-tunes on B with the course's one training loop (`training.train`, its loss replaced by this
objective), optionally rehearsing A and anchoring the weights, and logs both tasks' losses and accuracies.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from hubhelpers.evaluation import batches, normalise
from hubhelpers.params import Float, check_fields
from hubhelpers.training import TRAIN_FIELDS, TrainConfig, TrainResult, encode_examples, example_mean_loss, train

ALPHA = Float(at_least=0, at_most=1)  # the weight of task A's loss


def check_alpha(alpha: float) -> float:
    """`alpha` as a float if it lies in [0, 1], else a ValueError naming it."""
    ALPHA.check("alpha", alpha, {})
    return float(alpha)


def weighted_loss(model, batch_a: dict | None, batch_b: dict, alpha: float):
    """alpha * L_A + (1 - alpha) * L_B, each the per-example mean loss of its batch (L_A skipped when alpha = 0)."""
    alpha = check_alpha(alpha)
    loss_b = example_mean_loss(model, batch_b)
    if alpha == 0:
        return loss_b * 1.0
    if batch_a is None:
        raise ValueError(f"alpha={alpha} > 0 needs a task-A batch, got None")
    return alpha * example_mean_loss(model, batch_a) + (1 - alpha) * loss_b


def snapshot(model) -> dict:
    """A detached copy of the model's trainable parameters (the anchor theta_0)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def l2_anchor(model, anchor: dict):
    """sum over anchored parameters of ||theta - theta_0||^2 (0 at the anchor)."""
    if not anchor:
        raise ValueError("the anchor is empty; build it with snapshot(model)")
    params = dict(model.named_parameters())
    missing = sorted(set(anchor) - set(params))
    if missing:
        raise ValueError(f"anchor names parameters the model lacks: {missing[:3]}")
    return torch.stack([((params[n] - a) ** 2).sum() for n, a in anchor.items()]).sum()


@dataclass(frozen=True)
class ForgetConfig:
    """A fine-tuning run on task B: alpha weights task-A rehearsal, anchor the L2 pull to the initial weights.

    The optimisation itself is `training.train`'s (AdamW, linear warm-up then cosine decay, clipping), the same
    loop as every other fine-tuning run of the course.
    """

    steps: int = 150
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 15
    alpha: float = 0.0
    anchor: float = 0.0
    eval_every: int = 25
    max_len: int = 64
    seed: int = 0

    def __post_init__(self):
        shared = ("steps", "batch_size", "lr", "warmup_steps", "eval_every", "max_len", "seed")
        spec = {name: TRAIN_FIELDS[name] for name in shared}
        check_fields(self, {**spec, "alpha": ALPHA, "anchor": Float(at_least=0)})

    def train_config(self) -> TrainConfig:
        """The training loop's configuration of this run."""
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup_steps=self.warmup_steps,
                           eval_every=self.eval_every, checkpoint_every=self.steps, max_len=self.max_len,
                           seed=self.seed)


def task_sampler(task_a: Sequence, task_b: Sequence, alpha: float) -> Callable:
    """sample(rng, progress, size) -> {'B': size examples of task B, 'A': as many of task A, or None when alpha = 0}."""
    task_a, task_b = list(task_a), list(task_b)

    def sample(rng: random.Random, progress: float, size: int) -> dict:
        """One step's examples of each task, drawn without replacement."""
        batch_b = rng.sample(task_b, min(size, len(task_b)))
        return {"B": batch_b, "A": rng.sample(task_a, min(size, len(task_a))) if alpha > 0 else None}

    return sample


def forgetting_objective(tokenizer, cfg: ForgetConfig, anchor: dict | None) -> Callable:
    """loss(model, sample) = alpha * L_A + (1 - alpha) * L_B (+ (anchor / 2) * ||theta - theta_0||^2)."""

    def loss(model, sample: dict):
        """The step's objective on `sample`, differentiable in the trainable parameters."""
        batch_a = None if sample["A"] is None else _to(encode_examples(tokenizer, sample["A"], cfg.max_len), model)
        batch_b = _to(encode_examples(tokenizer, sample["B"], cfg.max_len), model)
        value = weighted_loss(model, batch_a, batch_b, cfg.alpha)
        if anchor is not None:
            value = value + 0.5 * cfg.anchor * l2_anchor(model, anchor)
        return value

    return loss


def train_tasks(model, tokenizer, task_a: Sequence, task_b: Sequence, cfg: ForgetConfig,
                evaluate: Callable | None = None, progress: bool = True) -> TrainResult:
    """Fine-tune `model` in place on alpha * L_A + (1 - alpha) * L_B + (anchor / 2) * ||theta - theta_0||^2.

    Only parameters with requires_grad train (so a PEFT model trains its adapters only). `evaluate(model)` -> dict
    runs before the first step and every cfg.eval_every steps.
    """
    if not task_b:
        raise ValueError("train_tasks needs task-B examples, got none")
    if cfg.alpha > 0 and not task_a:
        raise ValueError(f"alpha={cfg.alpha} > 0 needs task-A examples for rehearsal, got none")
    anchor = snapshot(model) if cfg.anchor > 0 else None
    start = []
    if evaluate is not None:
        model.eval()
        with torch.inference_mode():
            start.append({"step": 0, **evaluate(model)})
    result = train(model, tokenizer, task_sampler(task_a, task_b, cfg.alpha), cfg.train_config(), evaluate,
                   progress=progress, loss_fn=forgetting_objective(tokenizer, cfg, anchor))
    result.evals[:0] = start
    return result


def _to(batch: dict | None, model) -> dict | None:
    """The batch's tensors on the model's device."""
    return None if batch is None else {k: v.to(model.device) for k, v in batch.items()}


def task_loss(model, tokenizer, examples: Sequence, max_len: int = 64, batch_size: int = 64) -> float:
    """Mean per-example answer loss (nats per answer token) of `model` on `examples`, without gradients."""
    if not examples:
        raise ValueError("task_loss needs at least one example, got none")
    total = 0.0
    with torch.inference_mode():
        for chunk in batches(list(examples), batch_size):
            batch = _to(encode_examples(tokenizer, chunk, max_len), model)
            total += float(example_mean_loss(model, batch)) * len(chunk)
    return total / len(examples)


def split_by_person(examples: Sequence, fraction: float = 0.5, seed: int = 0) -> tuple[list, list]:
    """Examples about a random `fraction` of the people, and those about the others (no person in both)."""
    Float(0, 1).check("fraction", fraction, {})
    names = sorted({ex.meta["name"] for ex in examples})
    random.Random(f"split-{seed}").shuffle(names)
    first = set(names[: max(1, round(fraction * len(names)))])
    return [ex for ex in examples if ex.meta["name"] in first], [ex for ex in examples if ex.meta["name"] not in first]


def replayed(examples: Sequence, replay: Sequence) -> list[bool]:
    """For each example, whether `replay` asks about the same fact (the same person and relation)."""
    facts = {(ex.meta["name"], ex.meta["relation"]) for ex in replay}
    return [(ex.meta["name"], ex.meta["relation"]) in facts for ex in examples]


def accuracy_split(examples: Sequence, answers: Sequence[str], mask: Sequence[bool]) -> tuple[float, float]:
    """Exact-match accuracy of `answers` on the examples where `mask` is True, and on the others (nan if none)."""
    if not len(examples) == len(answers) == len(mask):
        raise ValueError(f"examples, answers and mask differ in length: {len(examples)}, {len(answers)}, {len(mask)}")
    hits = [normalise(a) == normalise(ex.completion) for a, ex in zip(answers, examples)]
    inside = [h for h, m in zip(hits, mask) if m]
    outside = [h for h, m in zip(hits, mask) if not m]
    return (sum(inside) / len(inside) if inside else float("nan"),
            sum(outside) / len(outside) if outside else float("nan"))


def answer_share(answers: Sequence[str], values: Sequence[str]) -> float:
    """Fraction of `answers` that are one of `values` (e.g. task-A answers that became task-B words)."""
    if not answers:
        raise ValueError("answer_share needs at least one answer, got none")
    allowed = {normalise(v) for v in values}
    return sum(normalise(a) in allowed for a in answers) / len(answers)
