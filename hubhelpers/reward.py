"""The reward model of RLHF (TRL's RewardTrainer on preference pairs) and the reward r = r_env + lambda * r_h."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification
from trl import RewardConfig, RewardTrainer

from hubhelpers.evaluation import batches
from hubhelpers.finetune import run_trainer, trainer_settings, trl_config
from hubhelpers.params import Float
from hubhelpers.preferences import chosen_rate, pair_dataset


def combined_reward(r_env, r_h, lam: float):
    """r = r_env + lam * r_h (works on floats and tensors)."""
    Float(at_least=0).check("lam", lam, {})
    return r_env + lam * r_h


def reward_model_from(model):
    """A sequence-classification model (one score) sharing `model`'s transformer weights, with a fresh head."""
    config = copy.deepcopy(model.config)
    config.num_labels = 1
    config.architectures = None
    rm = AutoModelForSequenceClassification.from_config(config)
    base = getattr(model, model.base_model_prefix)
    getattr(rm, rm.base_model_prefix).load_state_dict(base.state_dict())
    return rm.to(model.device)


def reward_config(output_dir: str | Path, steps: int = 100, lr: float = 1e-3, batch_size: int = 16, seed: int = 0,
                  **overrides):
    """A ``RewardConfig`` for small CPU runs: fp32, no checkpointing, no saving, no external loggers."""
    return trl_config(RewardConfig, trainer_settings(output_dir, steps, lr, batch_size, seed),
                      {"max_length": 128, "activation_checkpointing": False}, overrides)


def train_reward_model(rm, tokenizer, pairs: Sequence[dict], config):
    """Train `rm` in place with TRL's RewardTrainer (loss -log sigmoid(r_chosen - r_rejected)); returns the trainer."""
    return run_trainer(RewardTrainer, rm, tokenizer, pair_dataset(pairs), config)


def reward_scores(rm, tokenizer, prompts: Sequence[list], replies: Sequence[str], batch_size: int = 64):
    """The reward model's score of each (prompt messages, assistant reply) conversation, as a float tensor."""
    if len(prompts) != len(replies) or not prompts:
        raise ValueError(f"need as many prompts as replies (>= 1), got {len(prompts)} and {len(replies)}")
    texts = [tokenizer.apply_chat_template(list(p) + [{"role": "assistant", "content": r}], tokenize=False)
             for p, r in zip(prompts, replies)]
    out = []
    for chunk in batches(texts, batch_size):
        enc = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="right",
                        add_special_tokens=False).to(rm.device)
        with torch.inference_mode():
            out.append(rm(**enc).logits[:, 0].float().cpu())
    return torch.cat(out)


def pair_accuracy(rm, tokenizer, pairs: Sequence[dict]) -> float:
    """Fraction of pairs whose chosen reply the reward model scores above the rejected one."""
    return chosen_rate(lambda prompts, replies: reward_scores(rm, tokenizer, prompts, replies), pairs)
