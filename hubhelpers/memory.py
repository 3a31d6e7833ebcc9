"""A memory planner: parameter counts and the bytes of weights, LoRA adapters, gradients and AdamW states for full
fine-tuning, LoRA and QLoRA, computed from a config alone (no weights).

Llama-architecture configs (Llama, Mistral, a dict of their fields) are read by hand (``modules``, the lesson's
arithmetic); any other transformers config (GPT-2, Qwen2...) is instantiated on PyTorch's ``meta`` device, which
allocates no memory, and its weight-carrying modules are listed from it.

What is counted (and what is not):
- weights at fp32/fp16/bf16 (4/2/2 bytes), int8 (1 byte + one fp32 scale per output row, as bitsandbytes'
  LLM.int8 stores them) or NF4 (4 bits + one fp32 absmax per block of 64; with double quantization the absmax
  constants are themselves 8-bit, in blocks of 256 with one fp32 scale per block of 256 and one fp32 offset
  per tensor, as in ``bitsandbytes.functional.quantize_4bit`` with ``compress_statistics=True``);
- only the linear layers inside the transformer blocks are quantized: bitsandbytes leaves ``nn.Embedding``
  and the output layer (``lm_head``, skipped by transformers) and the RMSNorm weights in ``other_dtype``;
- LoRA adapters: r * (d_in + d_out) parameters per targeted layer (A is r x d_in, B is d_out x r);
- training state of the trainable part: gradients in the trainable weights' dtype and AdamW's two moments
  in fp32.
Activations, the CUDA context and allocator fragmentation are *not* counted; they depend on batch size and
sequence length. ``fits`` therefore only uses a fraction (``usable``) of the GPU.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig
from transformers.pytorch_utils import Conv1D

from .lora import BLOCK_LINEARS, TARGET_SETS
from .params import Float, check_int

BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0}
WEIGHT_FORMATS = ("fp32", "fp16", "bf16", "int8", "nf4")
METHODS = ("full", "lora", "qlora")
ALL_TARGETS = TARGET_SETS["blocks+io"]
GIB = 2**30
LLAMA_LAYOUT = ("llama", "mistral")  # model types whose modules `modules` lists by hand
NF4_BLOCK = 64  # bitsandbytes' default 4-bit block size
NESTED_BLOCK = 256  # block size of the double-quantized (8-bit) absmax constants


@dataclass(frozen=True)
class LlamaShape:
    """The numbers of a Llama-architecture config that fix its parameter count."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    mlp_bias: bool = False

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                     "num_key_value_heads", "head_dim"):
            check_int(f"LlamaShape.{name}", getattr(self, name))


@dataclass(frozen=True)
class Module:
    """One weight-carrying module of the model: its name, kind and (d_in, d_out); count = how many there are."""

    name: str
    kind: str  # "linear", "embedding" or "norm"
    d_in: int
    d_out: int
    count: int = 1
    bias: bool = False

    @property
    def params(self) -> int:
        """Parameters of one such module."""
        if self.kind == "norm":
            return self.d_out
        return self.d_in * self.d_out + (self.d_out if self.bias else 0)


def llama_shape(config) -> LlamaShape:
    """A LlamaShape from a transformers LlamaConfig-like object or a dict of its fields."""
    get = config.get if isinstance(config, Mapping) else (lambda k, d=None: getattr(config, k, d))
    missing = [k for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                           "num_attention_heads") if get(k) is None]
    if missing:
        raise ValueError(f"config lacks {missing}; a Llama-style config needs vocab_size, hidden_size, "
                         "intermediate_size, num_hidden_layers and num_attention_heads")
    heads = get("num_attention_heads")
    kv = get("num_key_value_heads") or heads
    head_dim = get("head_dim") or get("hidden_size") // heads
    return LlamaShape(vocab_size=get("vocab_size"), hidden_size=get("hidden_size"),
                      intermediate_size=get("intermediate_size"), num_hidden_layers=get("num_hidden_layers"),
                      num_attention_heads=heads, num_key_value_heads=kv, head_dim=head_dim,
                      tie_word_embeddings=bool(get("tie_word_embeddings", False)),
                      attention_bias=bool(get("attention_bias", False)), mlp_bias=bool(get("mlp_bias", False)))


def modules(config) -> list[Module]:
    """Every weight-carrying module (blocks grouped by count); a tied lm_head is omitted.

    A Llama-layout config (or a dict, or a LlamaShape) is read by hand; any other transformers config is
    instantiated on the meta device (no memory) and its modules are listed (`meta_modules`).
    """
    if isinstance(config, PretrainedConfig) and config.model_type not in LLAMA_LAYOUT:
        return meta_modules(config)
    s = config if isinstance(config, LlamaShape) else llama_shape(config)
    h, layers = s.hidden_size, s.num_hidden_layers
    q, kv = s.num_attention_heads * s.head_dim, s.num_key_value_heads * s.head_dim
    out = [Module("embed_tokens", "embedding", s.vocab_size, h)]
    out += [Module("q_proj", "linear", h, q, layers, s.attention_bias),
            Module("k_proj", "linear", h, kv, layers, s.attention_bias),
            Module("v_proj", "linear", h, kv, layers, s.attention_bias),
            Module("o_proj", "linear", q, h, layers, s.attention_bias),
            Module("gate_proj", "linear", h, s.intermediate_size, layers, s.mlp_bias),
            Module("up_proj", "linear", h, s.intermediate_size, layers, s.mlp_bias),
            Module("down_proj", "linear", s.intermediate_size, h, layers, s.mlp_bias),
            Module("input_layernorm", "norm", h, h, layers), Module("post_attention_layernorm", "norm", h, h, layers),
            Module("norm", "norm", h, h)]
    if not s.tie_word_embeddings:
        out.append(Module("lm_head", "linear", h, s.vocab_size))
    return out


def meta_modules(config) -> list[Module]:
    """The weight-carrying modules of any causal-LM config, from a model built on the meta device (grouped by count).

    Linear layers (and GPT-2's Conv1D, stored transposed) are 'linear', embeddings 'embedding'; anything else
    holding parameters (layer norms) is 'norm' with its parameter count. Tied weights are counted once. A module
    is named by its last two name parts ('mlp.c_fc'), the top-level ones by their own ('lm_head').
    """
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    seen, found = set(), Counter()
    for name, m in model.named_modules():
        own = [p for p in m.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        if not own:
            continue
        short = ".".join(name.split(".")[-2:])  # 'attn.c_proj' and 'mlp.c_proj' are different layers
        if isinstance(m, (torch.nn.Linear, Conv1D)):
            d_in, d_out = (m.weight.shape[0], m.weight.shape[1]) if isinstance(m, Conv1D) else \
                (m.in_features, m.out_features)
            found[Module(short, "linear", d_in, d_out, 1, m.bias is not None)] += 1
        elif isinstance(m, torch.nn.Embedding):
            found[Module(short, "embedding", m.num_embeddings, m.embedding_dim)] += 1
        else:
            n = sum(p.numel() for p in own)
            found[Module(short, "norm", n, n)] += 1
    return [Module(m.name, m.kind, m.d_in, m.d_out, count, m.bias) for m, count in found.items()]


def parameter_count(config) -> int:
    """Exact number of parameters of a Llama model with this config (tied embeddings counted once)."""
    return sum(m.params * m.count for m in modules(config))


def embedding_fraction(config, include_output: bool = False) -> float:
    """Share of the parameters in the embedding layers (and, with `include_output`, an untied `lm_head`)."""
    listed = modules(config)
    counted = sum(m.params * m.count for m in listed
                  if m.kind == "embedding" or (include_output and m.name == "lm_head"))
    return counted / sum(m.params * m.count for m in listed)


def quantized_bytes(n_weights: int, rows: int, fmt: str, double_quant: bool = True,
                    blocksize: int = NF4_BLOCK) -> float:
    """Bytes of one weight matrix of `n_weights` entries and `rows` output rows stored in `fmt`."""
    if fmt not in WEIGHT_FORMATS:
        raise ValueError(f"unknown weight format {fmt!r}; accepted: {WEIGHT_FORMATS}")
    if fmt in BYTES:
        return n_weights * BYTES[fmt]
    if fmt == "int8":
        return n_weights + 4.0 * rows  # int8 weights + one fp32 scale per row (SCB)
    blocks = math.ceil(n_weights / blocksize)
    if not double_quant:
        return n_weights / 2 + 4.0 * blocks  # packed 4-bit + fp32 absmax per block
    return n_weights / 2 + blocks + 4.0 * math.ceil(blocks / NESTED_BLOCK) + 4.0  # 8-bit absmax, fp32 scales, offset


def weight_bytes(config, fmt: str = "fp32", other_dtype: str = "fp32", skip_modules: Sequence[str] = ("lm_head",),
                 double_quant: bool = True, blocksize: int = NF4_BLOCK) -> float:
    """Bytes of all weights: linear layers in `fmt` (except `skip_modules`), everything else in `other_dtype`.

    For fp32/fp16/bf16 `fmt`, every weight is stored in `fmt`. For int8/nf4, embeddings, norms and the
    modules named in `skip_modules` stay in `other_dtype`, as bitsandbytes leaves them.
    """
    if other_dtype not in BYTES:
        raise ValueError(f"unknown other_dtype {other_dtype!r}; accepted: {tuple(BYTES)}")
    if fmt in BYTES:
        return parameter_count(config) * BYTES[fmt]
    total = 0.0
    for m in modules(config):
        if m.kind == "linear" and m.name not in skip_modules:
            total += m.count * quantized_bytes(m.d_in * m.d_out, m.d_out, fmt, double_quant, blocksize)
            total += m.count * (m.d_out * BYTES[other_dtype] if m.bias else 0)
        else:
            total += m.count * m.params * BYTES[other_dtype]
    return total


def lora_parameters(config, r: int, target_modules: Sequence[str] = BLOCK_LINEARS) -> int:
    """Parameters of LoRA adapters of rank r: r * (d_in + d_out) for each targeted module."""
    check_int("LoRA rank r", r)
    if isinstance(config, PretrainedConfig) and config.model_type not in LLAMA_LAYOUT:
        known = [m for m in meta_modules(config) if m.kind != "norm"]
        emb = next((m for m in known if m.kind == "embedding"), None)  # the token embedding comes first
        if config.tie_word_embeddings and emb is not None:
            known.append(Module("lm_head", "linear", emb.d_out, emb.d_in))
        return _adapter_parameters(known, r, target_modules)
    s = config if isinstance(config, LlamaShape) else llama_shape(config)
    known = [m for m in modules(s) if m.kind != "norm"]
    if s.tie_word_embeddings:
        known.append(Module("lm_head", "linear", s.hidden_size, s.vocab_size))
    return _adapter_parameters(known, r, target_modules)


def _adapter_parameters(known: Sequence[Module], r: int, target_modules: Sequence[str]) -> int:
    """r * (d_in + d_out) for each module of `known` that a name of `target_modules` ends (as PEFT matches them)."""
    def targeted(m: Module, t: str) -> bool:
        return m.name == t or m.name.endswith("." + t)

    bad = [t for t in target_modules if not any(targeted(m, t) for m in known)]
    if bad or not target_modules:
        raise ValueError(f"unknown LoRA target modules {list(target_modules)!r}; accepted: "
                         f"{sorted({m.name for m in known})}")
    return sum(m.count * r * (m.d_in + m.d_out) for m in known if any(targeted(m, t) for t in target_modules))


@dataclass
class MemoryPlan:
    """Predicted memory (bytes) of a fine-tuning set-up; activations are not included."""

    method: str
    total_params: int
    trainable_params: int
    weights: float
    adapters: float = 0.0
    gradients: float = 0.0
    optimizer: float = 0.0
    notes: dict = field(default_factory=dict)

    @property
    def total(self) -> float:
        """Bytes of weights, adapters, gradients and optimizer states together."""
        return self.weights + self.adapters + self.gradients + self.optimizer

    @property
    def total_gib(self) -> float:
        """The total in GiB (2**30 bytes)."""
        return self.total / GIB

    @property
    def trainable_fraction(self) -> float:
        """Trainable parameters over all parameters (adapters included)."""
        return self.trainable_params / self.total_params


def plan(config, method: str = "full", r: int = 16, target_modules: Sequence[str] = BLOCK_LINEARS,
         dtype: str = "bf16", train_dtype: str = "fp32", double_quant: bool = True,
         skip_modules: Sequence[str] = ("lm_head",)) -> MemoryPlan:
    """The memory plan of fine-tuning a model of this config with `method` ('full', 'lora' or 'qlora').

    full: every weight in `train_dtype`, with gradients in `train_dtype` and two fp32 AdamW moments each;
    lora: frozen base in `dtype` plus rank-r adapters trained in fp32 (gradients + two moments);
    qlora: as lora, but the base's block linears in NF4 (others in `dtype`, see weight_bytes).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; accepted: {METHODS}")
    for name, value in (("dtype", dtype), ("train_dtype", train_dtype)):
        if value not in BYTES:
            raise ValueError(f"unknown {name} {value!r}; accepted: {tuple(BYTES)}")
    n = parameter_count(config)
    if method == "full":
        return MemoryPlan("full", n, n, weights=n * BYTES[train_dtype], gradients=n * BYTES[train_dtype],
                          optimizer=8.0 * n, notes={"dtype": train_dtype})
    n_lora = lora_parameters(config, r, target_modules)
    base = (weight_bytes(config, dtype) if method == "lora" else
            weight_bytes(config, "nf4", dtype, skip_modules, double_quant))
    return MemoryPlan(method, n + n_lora, n_lora, weights=base, adapters=4.0 * n_lora, gradients=4.0 * n_lora,
                      optimizer=8.0 * n_lora, notes={"dtype": dtype, "r": r, "targets": list(target_modules)})


def fits(memory: MemoryPlan, gpu_gib: float, usable: float = 0.9) -> bool:
    """True when the plan's total fits in `usable` of a GPU of `gpu_gib` GiB (the rest for activations)."""
    Float(0).check("gpu_gib", gpu_gib, {})
    if not 0 < usable <= 1:
        raise ValueError(f"usable must be in (0, 1], got {usable!r}")
    return memory.total <= usable * gpu_gib * GIB


def plan_table(configs: Mapping[str, object], gpus_gib: Sequence[float] = (16, 24, 48, 80),
               methods: Sequence[str] = METHODS, **plan_kwargs) -> list[dict]:
    """One row per (model, method): parameters, GiB of weights/training state/total and which GPUs it fits."""
    rows = []
    for name, config in configs.items():
        for method in methods:
            p = plan(config, method, **plan_kwargs)
            row = {"model": name, "method": method, "params_b": round(p.total_params / 1e9, 3),
                   "trainable_pct": round(100 * p.trainable_fraction, 3), "weights_gib": round(p.weights / GIB, 2),
                   "train_state_gib": round((p.adapters + p.gradients + p.optimizer) / GIB, 2),
                   "total_gib": round(p.total_gib, 2)}
            row.update({f"fits_{g:g}gb": fits(p, g) for g in gpus_gib})
            rows.append(row)
    return rows


def llama2_configs() -> dict[str, dict]:
    """The public config values of Llama-2 7B, 13B and 70B (meta-llama/Llama-2-*-hf config.json)."""
    common = {"vocab_size": 32000, "tie_word_embeddings": False}
    return {
        "Llama-2-7B": {**common, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                       "num_attention_heads": 32, "num_key_value_heads": 32},
        "Llama-2-13B": {**common, "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
                        "num_attention_heads": 40, "num_key_value_heads": 40},
        "Llama-2-70B": {**common, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
                        "num_attention_heads": 64, "num_key_value_heads": 8},
    }
