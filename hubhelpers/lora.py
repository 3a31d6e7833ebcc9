"""LoRA helpers: the adapter targets, untying shared input/output embeddings before merging, trainable fractions,
and a quiet get_peft_model for the course's small models."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from peft import LoraConfig, get_peft_model
from transformers.pytorch_utils import Conv1D

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


def lora_targets(name: str, model=None) -> tuple[str, ...]:
    """The module names of a named adapter placement (a key of TARGET_SETS): Llama's names, or `model`'s own.

    With a model, the names are read from it (`model_targets`), so 'attn' is GPT-2's attn.c_attn and attn.c_proj,
    Qwen2's q/k/v/o_proj, and so on; PEFT matches each name as the end of a module's dotted name.
    """
    if name not in TARGET_SETS:
        raise ValueError(f"LoRA targets must be one of {sorted(TARGET_SETS)}, got {name!r}")
    if model is None:
        return TARGET_SETS[name]
    attention, block, io = model_targets(model)
    return (attention if name.startswith("attn") else block) + (io if name.endswith("+io") else ())


def model_targets(model) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(attention linears, all block linears, input embedding + output layer) of `model`, in module order.

    A linear is any nn.Linear or GPT-2 Conv1D except the output layer; it is 'attention' when a parent module's
    name mentions attn/attention in any case (T5's SelfAttention and EncDecAttention too). A short name shared by
    two kinds of layer (GPT-2's c_proj, in attention and in the MLP; T5's q in self- and cross-attention) keeps its
    parent (attn.c_proj, mlp.c_proj) so that each names one kind only.
    """
    out_layer = model.get_output_embeddings()
    names = {id(m): n for n, m in model.named_modules()}
    linears = [n for n, m in model.named_modules()
               if isinstance(m, (torch.nn.Linear, Conv1D)) and m is not out_layer]
    parents: dict[str, set[str]] = {}
    for n in linears:
        parents.setdefault(n.split(".")[-1], set()).add(".".join(n.split(".")[-2:-1]))
    keys = list(dict.fromkeys(n.split(".")[-1] if len(parents[n.split(".")[-1]]) == 1 else ".".join(n.split(".")[-2:])
                              for n in linears))
    attention = tuple(k for k in keys if any(
        "attn" in part.lower() or "attention" in part.lower()
        for n in linears if n.endswith(k) for part in n.split(".")[:-1]))
    io = tuple(names[id(m)].split(".")[-1] for m in (model.get_input_embeddings(), out_layer) if m is not None)
    return attention, tuple(keys), io


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
    names |= {".".join(name.split(".")[-2:]) for name, _ in model.named_modules()}
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
