"""Direct preference optimisation (TRL's DPOTrainer), and how often a policy prefers the chosen reply."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from trl import DPOConfig, DPOTrainer

from hubhelpers.evaluation import batches
from hubhelpers.finetune import run_trainer, stop_token_ids, trainer_settings, trl_config
from hubhelpers.params import Float
from hubhelpers.preferences import chosen_rate, pair_dataset
from hubhelpers.rl import sequence_logprob


def dpo_config(output_dir: str | Path, steps: int = 100, lr: float = 1e-3, batch_size: int = 16, beta: float = 0.1,
               seed: int = 0, sft_weight: float = 0.0, **overrides):
    """A ``DPOConfig`` for small CPU runs (fp32, no checkpointing): sigmoid DPO loss with temperature `beta`, plus,
    when ``sft_weight`` > 0, that weight times the mean NLL of the chosen replies' tokens (RPO: TRL's loss_type
    ["sigmoid", "sft"])."""
    Float(0).check("beta", beta, {})
    Float(at_least=0).check("sft_weight", sft_weight, {})
    losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, float(sft_weight)]} if sft_weight else {}
    return trl_config(DPOConfig, trainer_settings(output_dir, steps, lr, batch_size, seed),
                      {"beta": beta, "max_length": 128, "activation_checkpointing": False, **losses}, overrides)


def dpo_train(model, tokenizer, pairs: Sequence[dict], config):
    """Train `model` in place with TRL's DPOTrainer (its frozen copy is the reference); returns the trainer."""
    return run_trainer(DPOTrainer, model, tokenizer, pair_dataset(pairs), config)


def reply_logprobs(model, tokenizer, prompts: Sequence[list], replies: Sequence[str], batch_size: int = 64):
    """log pi(reply | prompt) of each assistant reply (its tokens and the end-of-turn token), as a tensor."""
    if len(prompts) != len(replies) or not prompts:
        raise ValueError(f"need as many prompts as replies (>= 1), got {len(prompts)} and {len(replies)}")
    rows, stops = [], set(stop_token_ids(tokenizer))
    for p, r in zip(prompts, replies):
        head = tokenizer(tokenizer.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"]
        full = tokenizer(tokenizer.apply_chat_template(list(p) + [{"role": "assistant", "content": r}],
                                                       tokenize=False), add_special_tokens=False)["input_ids"]
        ends = [k for k in range(len(head), len(full)) if full[k] in stops]  # the reply ends at the end of its turn
        stop = ends[0] + 1 if ends else len(full)
        rows.append((full[:stop], len(head)))
    out = []
    for chunk in batches(rows, batch_size):
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.tensor([i + [tokenizer.pad_token_id] * (width - len(i)) for i, _ in chunk])
        att = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk])
        mask = torch.tensor([[0] * h + [1] * (len(i) - h) + [0] * (width - len(i)) for i, h in chunk]).bool()
        sample = {"input_ids": ids.to(model.device), "attention_mask": att.to(model.device),
                  "mask": mask.to(model.device)}
        with torch.inference_mode():
            out.append(sequence_logprob(model, sample).cpu())
    return torch.cat(out)


def preference_rate(model, tokenizer, pairs: Sequence[dict]) -> float:
    """Fraction of pairs where the policy gives the chosen reply a higher probability than the rejected one."""
    return chosen_rate(lambda prompts, replies: reply_logprobs(model, tokenizer, prompts, replies), pairs)
