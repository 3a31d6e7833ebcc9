"""LoRA helpers: the adapter targets, untying shared input/output embeddings before merging, trainable fractions,
and a quiet get_peft_model for the course's small models."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from peft import LoraConfig, get_peft_model

from .params import check_int

ATTENTION_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj")
BLOCK_LINEARS = ATTENTION_LINEARS + ("gate_proj", "up_proj", "down_proj")
IO_MODULES = ("embed_tokens", "lm_head")
TARGET_SETS = {"attn": ATTENTION_LINEARS, "attn+io": ATTENTION_LINEARS + IO_MODULES,
               "blocks": BLOCK_LINEARS, "blocks+io": BLOCK_LINEARS + IO_MODULES}
# Harmless messages peft/transformers emit on these models: a deprecated attribute peft reads, and the tied-weights
# caution (we untie before merging, and never merge a tied model).
_QUIET = ("`is_gradient_checkpointing` is deprecated", "Model has `tie_word_embeddings=True`",
          "Model with `tie_word_embeddings=True`")


def lora_targets(name: str) -> tuple[str, ...]:
    """The module names of a named adapter placement (a key of TARGET_SETS)."""
    if name not in TARGET_SETS:
        raise ValueError(f"LoRA targets must be one of {sorted(TARGET_SETS)}, got {name!r}")
    return TARGET_SETS[name]


def untie_output_embeddings(model):
    """Give the output layer its own copy of a weight tied to the input embeddings (outputs unchanged), in place.

    Merging LoRA updates into one weight shared by two layers would apply both updates to both layers, so a tied
    model is untied before adapters go on both. Models that are not tied are returned unchanged.
    """
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    if out is None or out.weight is not inp.weight:
        return model
    out.weight = torch.nn.Parameter(inp.weight.detach().clone(), requires_grad=inp.weight.requires_grad)
    model.config.tie_word_embeddings = False
    if hasattr(model.config, "get_text_config"):
        model.config.get_text_config().tie_word_embeddings = False
    return model


def lora_model(model, r: int, alpha: float, target_modules: Sequence[str], dropout: float = 0.0,
               task_type: str | None = "CAUSAL_LM"):
    """`model` wrapped by peft with rank-r LoRA adapters (scaling alpha / r) on `target_modules`.

    task_type=None wraps any torch module (not only a causal LM)."""
    check_int("LoRA rank r", r)
    if not target_modules:
        raise ValueError(f"target_modules must name at least one module, got {target_modules!r}")
    names = {name.split(".")[-1] for name, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in names]
    if missing:
        raise ValueError(f"LoRA target modules {missing!r} are not in the model; it has e.g. "
                         f"{sorted(n for n in names if n.endswith(('proj', 'head', 'tokens')))}")
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=list(target_modules), lora_dropout=dropout,
                        bias="none", task_type=task_type)
    with warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        return get_peft_model(model, config)


def trainable_fraction(model) -> tuple[int, int, float]:
    """(trainable parameters, all parameters, their ratio), counting shared tensors once."""
    seen, total, trainable = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    if total == 0:
        raise ValueError("the model has no parameters")
    return trainable, total, trainable / total


def max_logit_diff(model_a, model_b, tokenizer, prompts: Sequence[str]) -> float:
    """Largest absolute difference between the two models' logits on `prompts` (one padded batch)."""
    if not prompts:
        raise ValueError("max_logit_diff needs at least one prompt, got none")
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, padding_side="right")
    mask = enc["attention_mask"].bool()
    with torch.inference_mode():
        a = model_a(**enc.to(model_a.device)).logits.float().cpu()
        b = model_b(**enc.to(model_b.device)).logits.float().cpu()
    return float((a - b).abs()[mask].max())
