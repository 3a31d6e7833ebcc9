"""A small, readable causal-LM training loop: cosine schedule with warm-up, clipping, evals, resumable checkpoints."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, load_model, save_file, save_model
from tqdm.auto import tqdm

from hubhelpers.models import logits_at
from hubhelpers.params import Float, Int, check_fields

IGNORE_INDEX = -100
PHASES = ("data", "forward", "backward", "optimizer")  # where a step's time goes (TrainResult.phase_s)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a training run."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 250
    checkpoint_every: int = 500
    max_len: int = 384
    micro_batches: int = 2
    seed: int = 0

    def __post_init__(self):
        check_fields(self, TRAIN_FIELDS)


@dataclass(frozen=True)
class Recipe:
    """A row of RECIPES: how a notebook's learning rate and batch size, tuned on the shipped model, carry over."""

    name: str
    up_to_params: float  # the row applies to models with at most this many parameters
    lr_factor: float  # times the notebook's learning rate
    batch_factor: float  # times its batch size (rounded, at least 1)

    def lr(self, lr: float) -> float:
        """The learning rate for this row, from the notebook's shipped-model value."""
        Float(0, 1).check("lr", lr, {})
        return lr * self.lr_factor

    def batch(self, batch_size: int) -> int:
        """The batch size for this row (at least 1), from the notebook's shipped-model value."""
        Int(1).check("batch_size", batch_size, {})
        return max(1, round(batch_size * self.batch_factor))


# Recipes by model size. The notebooks' values are tuned on the shipped model (656k parameters) and measured there:
# that row multiplies by 1, so the shipped model's runs are unchanged. Bigger models are fine-tuned with smaller
# steps (the usual full fine-tuning rates are ~1e-4 for ~100M parameters and ~2e-5 for 7B; LoRA's ~10x the full
# rate, as in the notebooks), and a 7B model's activations need smaller batches. Step counts carry over unchanged:
# each notebook's task has the same size whatever the model. Only the first row is measured by the course.
RECIPES = (
    Recipe("tiny: up to 10M parameters (the shipped model; the matrix's random models)", 1e7, 1.0, 1.0),
    Recipe("small: up to 1B parameters (SmolLM2-135M/360M, Qwen2.5-0.5B)", 1e9, 0.1, 1.0),
    Recipe("large: over 1B parameters (Llama-2-7B and up: LoRA/QLoRA on a GPU)", math.inf, 0.02, 0.25),
)


def recipe_for(n_params: int) -> Recipe:
    """The row of RECIPES for a model of `n_params` parameters."""
    Int(1).check("n_params", n_params, {})
    return next(r for r in RECIPES if n_params <= r.up_to_params)


# What each field of a training run accepts; configs that embed a run (ForgetConfig) check their copies with it.
TRAIN_FIELDS = {
    "steps": Int(1),
    "batch_size": Int(1),
    "lr": Float(0, 1),
    "warmup_steps": Int(0, at_most="steps"),
    "min_lr_ratio": Float(at_least=0, at_most=1),
    "weight_decay": Float(at_least=0),
    "grad_clip": Float(0),
    "eval_every": Int(1),
    "checkpoint_every": Int(1),
    "max_len": Int(1),
    "micro_batches": Int(1),
    "seed": Int(0),
}


@dataclass
class TrainResult:
    """What a run produced: per-step losses, periodic evaluations and totals."""

    history: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    tokens_seen: int = 0
    wall_s: float = 0.0
    phase_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))

    @property
    def losses(self) -> list[float]:
        return [h["loss"] for h in self.history]

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of an evaluated figure, from the evaluations that report it."""
        rows = [e for e in self.evals if key in e]
        return [e["step"] for e in rows], [e[key] for e in rows]


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_ratio."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def encode_examples(tokenizer, examples, max_len: int = 384) -> dict:
    """Tokenise examples as bos+prompt+completion+eos; labels are -100 on bos and the prompt (right-padded).

    A tokenizer without a bos token (Qwen2's, for one) starts at the prompt.
    """
    if not examples:
        raise ValueError("encode_examples needs at least one example, got none")
    rows, labels = [], []
    head = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    for ex in examples:
        p = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"] if ex.prompt else []
        c = tokenizer(ex.completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (head + p + c)[-max_len:]
        lab = ([IGNORE_INDEX] * (len(head) + len(p)) + c)[-max_len:]
        rows.append(ids)
        labels.append(lab)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    return {
        "input_ids": torch.tensor([r + [pad] * (width - len(r)) for r in rows]),
        "attention_mask": torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows]),
        "labels": torch.tensor([lab + [IGNORE_INDEX] * (width - len(lab)) for lab in labels]),
    }


def example_mean_loss(model, batch: dict):
    """Cross-entropy averaged over each example's scored tokens, then over examples.

    Every example counts equally, so a one-word answer weighs as much as a long passage: the objective
    is focused on answering, not dominated by the longest texts. The output head runs only at the scored
    positions (models.logits_at): with the loss on answers alone, most fine-tuning here, that is a small share of
    them, and the head plus its softmax is a large share of a small model's compute.
    """

    labels = batch["labels"][:, 1:]
    scored = labels != IGNORE_INDEX
    logits = logits_at(model, batch["input_ids"], batch["attention_mask"], scored)
    rows = scored.nonzero()[:, 0]  # the example each scored position belongs to
    nll = F.cross_entropy(logits.float(), labels[scored], reduction="none")
    per_example = nll.new_zeros(scored.shape[0]).index_add(0, rows, nll)
    return (per_example / scored.sum(1).clamp(min=1)).mean()


def _split(items: list, parts: int) -> list[list]:
    """`items` cut into `parts` consecutive, nearly equal, non-empty chunks."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for i in range(parts):
        end = start + size + (i < extra)
        out.append(items[start:end])
        start = end
    return out


def _lap(phase_s: dict[str, float], phase: str, since: float) -> float:
    """Add the time since `since` to phase_s[phase]; return now (on a GPU, asynchronous kernels blur the split)."""
    now = time.perf_counter()
    phase_s[phase] = phase_s.get(phase, 0.0) + now - since
    return now


def make_optimizer(model, cfg: TrainConfig):
    """AdamW with weight decay on matrices only (not on norms)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def _format_eval(row: dict) -> str:
    """'acc 0.912, loss 0.123': an evaluation row for the progress log (numbers to 3 decimals, step left out)."""
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k != "step")


def _answer_loss_backward(model, tokenizer, examples: list, cfg: TrainConfig, result: TrainResult,
                          clock: float) -> tuple[float, float]:
    """Backpropagate the per-example mean answer loss of `examples` in cfg.micro_batches; (loss, clock)."""
    examples = sorted(examples, key=lambda ex: len(ex.text))
    loss = 0.0
    for chunk in _split(examples, cfg.micro_batches):  # similar lengths together: less padding
        batch = {k: v.to(model.device) for k, v in encode_examples(tokenizer, chunk, cfg.max_len).items()}
        clock = _lap(result.phase_s, "data", clock)
        part = example_mean_loss(model, batch) * len(chunk) / len(examples)
        clock = _lap(result.phase_s, "forward", clock)
        part.backward()
        loss += part.item()
        result.tokens_seen += int(batch["attention_mask"].sum())
        clock = _lap(result.phase_s, "backward", clock)
    return loss, clock


def train(model, tokenizer, sample_batch: Callable[[random.Random, float, int], Any], cfg: TrainConfig,
          evaluate: Callable | None = None, checkpoint_dir: str | Path | None = None,
          progress: bool = True, stop_after: int | None = None,
          loss_fn: Callable[[Any, Any], Any] | None = None) -> TrainResult:
    """Train `model` on batches from sample_batch(rng, progress, batch_size); resumes from checkpoint_dir.

    The default loss is the per-example mean answer loss of the sampled examples (in cfg.micro_batches);
    `loss_fn(model, sample)` replaces it for an objective of several parts (e.g. a weighted sum of two tasks'
    losses plus a penalty), `sample` being whatever sample_batch returned; it then encodes the sample itself (its
    time counts as "forward"), cfg.micro_batches does not apply and tokens_seen is not counted. Only parameters
    that require a gradient train. `stop_after` ends the run early at that step (the schedule still spans
    cfg.steps), so a long run can be split across sessions and resumed from its checkpoint.
    """
    opt = make_optimizer(model, cfg)
    result, start = TrainResult(), 0
    if checkpoint_dir is not None and (Path(checkpoint_dir) / "state.json").is_file():
        start, result = load_checkpoint(model, opt, checkpoint_dir, cfg)
    model.train()
    t0 = time.perf_counter() - result.wall_s
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    # refresh at most twice a second: in Jupyter each refresh is a widget message, and thousands of them overflow
    # the kernel's output channel (a client that reads it only after the cell, like nbval, then loses messages)
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, disable=not progress, desc="train",
               mininterval=0.5)
    for step in bar:
        clock = time.perf_counter()
        rng = random.Random(f"batch-{cfg.seed}-{step}")
        sample = sample_batch(rng, step / cfg.steps, cfg.batch_size)
        lr = lr_at(step, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        if loss_fn is None:
            loss, clock = _answer_loss_backward(model, tokenizer, sample, cfg, result, clock)
        else:
            step_loss = loss_fn(model, sample)
            clock = _lap(result.phase_s, "forward", clock)
            step_loss.backward()
            loss = step_loss.item()
            clock = _lap(result.phase_s, "backward", clock)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        _lap(result.phase_s, "optimizer", clock)
        result.history.append({"step": step + 1, "loss": round(loss, 5), "lr": lr})
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        if evaluate is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            model.eval()
            with torch.inference_mode():
                result.evals.append({"step": step + 1, **evaluate(model)})
            model.train()
            bar.write(f"step {step + 1}: {_format_eval(result.evals[-1])}")
        result.wall_s = time.perf_counter() - t0
        if checkpoint_dir is not None and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == end):
            save_checkpoint(model, opt, checkpoint_dir, step + 1, result, cfg)
    model.eval()
    return result


def save_checkpoint(model, opt, directory: str | Path, step: int, result: TrainResult,
                    cfg: TrainConfig | None = None) -> None:
    """Write model and AdamW state as safetensors plus a JSON state, atomically (tmp dir, then rename)."""
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    state = opt.state_dict()
    tensors = {f"{i}.{k}": v.contiguous() for i, s in state["state"].items() for k, v in s.items()}
    if tensors:
        save_file(tensors, str(tmp / "optimizer.safetensors"))
    meta = {"step": step, "config": asdict(cfg) if cfg else None, "param_groups": state["param_groups"],
            "history": result.history,
            "evals": result.evals, "tokens_seen": result.tokens_seen, "wall_s": result.wall_s,
            "phase_s": result.phase_s}
    (tmp / "state.json").write_text(json.dumps(meta))
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(model, opt, directory: str | Path, cfg: TrainConfig) -> tuple[int, TrainResult]:
    """Restore model and optimizer from save_checkpoint's files; returns (step, result so far)."""
    directory = Path(directory)
    try:
        meta = json.loads((directory / "state.json").read_text())
        load_model(model, str(directory / "model.safetensors"))
    except (OSError, ValueError, RuntimeError) as err:
        raise ValueError(f"checkpoint at {directory} is corrupted or incompatible ({err}); delete it to restart") \
            from err
    if meta.get("config") not in (None, asdict(cfg)):
        raise ValueError(f"checkpoint at {directory} was written by another TrainConfig ({meta['config']}); "
                         f"delete it to restart, or resume with the same config")
    if meta["step"] > cfg.steps:
        raise ValueError(f"checkpoint at {directory} is at step {meta['step']} > cfg.steps={cfg.steps}")
    flat = load_file(str(directory / "optimizer.safetensors")) if (directory / "optimizer.safetensors").exists() else {}
    state: dict = {}
    for key, value in flat.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    result = TrainResult(meta["history"], meta["evals"], meta["tokens_seen"], meta["wall_s"],
                         meta.get("phase_s", dict.fromkeys(PHASES, 0.0)))
    return meta["step"], result
