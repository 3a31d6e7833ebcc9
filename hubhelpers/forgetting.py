"""Catastrophic forgetting and its mitigations: the weighted objective alpha * L_A + (1 - alpha) * L_B
(rehearsal), an L2 anchor to the initial weights, and LoRA (a frozen base).

Task A is what the model already does (closed-book facts from pretraining); task B is new (a reserved relation).
`train_tasks` fine-tunes on B, optionally rehearsing A and anchoring the weights, and logs both tasks' losses and
accuracies over the steps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hubhelpers.training import encode_examples, example_mean_loss


def check_alpha(alpha: float) -> float:
    """`alpha` as a float if it lies in [0, 1], else a ValueError naming it."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
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
    import torch

    if not anchor:
        raise ValueError("the anchor is empty; build it with snapshot(model)")
    params = dict(model.named_parameters())
    missing = sorted(set(anchor) - set(params))
    if missing:
        raise ValueError(f"anchor names parameters the model lacks: {missing[:3]}")
    return torch.stack([((params[n] - a) ** 2).sum() for n, a in anchor.items()]).sum()


@dataclass(frozen=True)
class ForgetConfig:
    """A fine-tuning run on task B: alpha weights task-A rehearsal, anchor the L2 pull to the initial weights."""

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
        for name in ("steps", "batch_size", "eval_every", "max_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ForgetConfig.{name} must be an int >= 1, got {value!r}")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1):
            raise ValueError(f"ForgetConfig.lr must be in (0, 1), got {self.lr!r}")
        if not isinstance(self.warmup_steps, int) or not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"ForgetConfig.warmup_steps must be an int in [0, steps], got {self.warmup_steps!r}")
        check_alpha(self.alpha)
        anchor = self.anchor
        if isinstance(anchor, bool) or not isinstance(anchor, (int, float)) or not 0 <= anchor < math.inf:
            raise ValueError(f"ForgetConfig.anchor must be a finite number >= 0, got {self.anchor!r}")


@dataclass
class ForgetResult:
    """Per-step training losses and periodic evaluations (step, and whatever `evaluate` returned)."""

    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        rows = [e for e in self.evals if key in e]
        return [e["step"] for e in rows], [e[key] for e in rows]


def train_tasks(model, tokenizer, task_a: Sequence, task_b: Sequence, cfg: ForgetConfig,
                evaluate: Callable | None = None, progress: bool = True) -> ForgetResult:
    """Fine-tune `model` in place on alpha * L_A + (1 - alpha) * L_B + (anchor / 2) * ||theta - theta_0||^2.

    Only parameters with requires_grad train (so a PEFT model trains its adapters only). `evaluate(model)` -> dict
    runs before the first step and every cfg.eval_every steps.
    """
    import torch
    from tqdm.auto import tqdm

    if not task_b:
        raise ValueError("train_tasks needs task-B examples, got none")
    if cfg.alpha > 0 and not task_a:
        raise ValueError(f"alpha={cfg.alpha} > 0 needs task-A examples for rehearsal, got none")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    anchor = snapshot(model) if cfg.anchor > 0 else None
    result = ForgetResult()

    def run_eval(step: int) -> None:
        if evaluate is None:
            return
        model.eval()
        with torch.inference_mode():
            result.evals.append({"step": step, **evaluate(model)})
        model.train()

    run_eval(0)
    model.train()
    for step in tqdm(range(cfg.steps), disable=not progress, desc=f"alpha={cfg.alpha:g}",
                     mininterval=0.5):
        rng = random.Random(f"forget-{cfg.seed}-{step}")
        batch_b = encode_examples(tokenizer, rng.sample(list(task_b), min(cfg.batch_size, len(task_b))), cfg.max_len)
        batch_a = (encode_examples(tokenizer, rng.sample(list(task_a), min(cfg.batch_size, len(task_a))), cfg.max_len)
                   if cfg.alpha > 0 else None)
        lr = cfg.lr * min(1.0, (step + 1) / max(1, cfg.warmup_steps))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = weighted_loss(model, _to(batch_a, model), _to(batch_b, model), cfg.alpha)
        if anchor is not None:
            loss = loss + 0.5 * cfg.anchor * l2_anchor(model, anchor)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        result.history.append({"step": step + 1, "loss": loss.item()})
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            run_eval(step + 1)
    model.eval()
    return result


def _to(batch: dict | None, model) -> dict | None:
    """The batch's tensors on the model's device."""
    return None if batch is None else {k: v.to(model.device) for k, v in batch.items()}


def task_loss(model, tokenizer, examples: Sequence, max_len: int = 64, batch_size: int = 64) -> float:
    """Mean per-example answer loss (nats per answer token) of `model` on `examples`, without gradients."""
    import torch

    if not examples:
        raise ValueError("task_loss needs at least one example, got none")
    total = 0.0
    with torch.inference_mode():
        for i in range(0, len(examples), batch_size):
            chunk = list(examples[i: i + batch_size])
            batch = _to(encode_examples(tokenizer, chunk, max_len), model)
            total += float(example_mean_loss(model, batch)) * len(chunk)
    return total / len(examples)


def split_by_person(examples: Sequence, fraction: float = 0.5, seed: int = 0) -> tuple[list, list]:
    """Examples about a random `fraction` of the people, and those about the others (no person in both)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    names = sorted({ex.meta["name"] for ex in examples})
    random.Random(f"split-{seed}").shuffle(names)
    first = set(names[: max(1, round(fraction * len(names)))])
    return [ex for ex in examples if ex.meta["name"] in first], [ex for ex in examples if ex.meta["name"] not in first]
