"""Information extraction: a pydantic schema for TinyWorld person records, a parser that validates model output
against it (naming the kind of error), prompts and training examples, and per-field precision / recall / F1.

A record is one JSON object with the fields of ``tasks.EXTRACTION_FIELDS``; ``name`` is required, every other
field is a string or ``null`` (the document does not say).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError

from hubhelpers import tasks
from hubhelpers import world as W
from hubhelpers.params import check_int

FIELDS = tasks.EXTRACTION_FIELDS
ERROR_KINDS = ("ok", "no_json", "invalid_json", "not_an_object", "missing_field", "wrong_type", "unknown_field")
INSTRUCTION = "Extract the person's name, city, job, pet and birth month as JSON (null when not stated)."


class PersonRecord(BaseModel):
    """The schema of an extracted record: strict strings, no unknown keys, every field but `name` nullable."""

    model_config = ConfigDict(extra="forbid", strict=True, str_strip_whitespace=True)

    name: str
    city: str | None = None
    job: str | None = None
    pet: str | None = None
    month: str | None = None


@dataclass(frozen=True)
class Parsed:
    """The outcome of parsing one model output: the validated record (or None), the error kind and its detail."""

    record: dict | None
    error: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error == "ok"


def _error_kind(err: ValidationError) -> str:
    """The first pydantic error of `err` as one of ERROR_KINDS."""
    kind = err.errors()[0]["type"]
    if kind == "missing":
        return "missing_field"
    if kind == "extra_forbidden":
        return "unknown_field"
    return "wrong_type"


def parse_record(text: str) -> Parsed:
    """Find the first JSON object in `text`, decode it and validate it against PersonRecord."""
    if not isinstance(text, str):
        raise ValueError(f"parse_record needs a string, got {type(text).__name__}")
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return Parsed(None, "no_json", f"no '{{' or '[' in {text[:60]!r}")
    start = min(starts)
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as err:
        return Parsed(None, "invalid_json", f"{err.msg} at character {err.pos}")
    if not isinstance(obj, dict):
        return Parsed(None, "not_an_object", f"decoded a {type(obj).__name__}, not an object")
    try:
        record = PersonRecord.model_validate(obj)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return Parsed(None, _error_kind(err), f"{where}: {first['msg']}")
    return Parsed(record.model_dump(), "ok")


def error_table(parsed: Sequence[Parsed]) -> dict[str, int]:
    """How many outputs fell into each error kind (every kind listed, zeros included)."""
    counts = dict.fromkeys(ERROR_KINDS, 0)
    for p in parsed:
        counts[p.error] += 1
    return counts


def valid_rate(parsed: Sequence[Parsed]) -> float:
    """Fraction of outputs that parsed and validated."""
    if not parsed:
        raise ValueError("valid_rate needs at least one parsed output, got none")
    return sum(p.ok for p in parsed) / len(parsed)


# ---------------------------------------------------------------------------------------------------------
# Prompts and training examples
# ---------------------------------------------------------------------------------------------------------

def record_json(record: dict, value_space: bool = True) -> str:
    """A record as one line of JSON in schema order; `value_space` writes each string as ' value' (see below).

    A byte-level BPE tokenizer spells a word after a space (' Vuma' -> ' V', 'uma') differently from the same word
    after a quote ('"Vuma' -> '"', 'V', 'uma'); with the leading space the model copies exactly the tokens it reads
    in the document. The schema strips the space again, so the record is the same.
    """
    missing = [f for f in FIELDS if f not in record]
    if missing:
        raise ValueError(f"record lacks fields {missing}; expected {list(FIELDS)}")
    pad = " " if value_space else ""
    return json.dumps({f: (None if record[f] is None else f"{pad}{record[f]}") for f in FIELDS})


def extraction_prompt(text: str, shots: Sequence[dict] = (), instruction: bool = True) -> str:
    """'Document: ...\\nJSON:' for `text`, preceded by the instruction and by solved `shots` (documents with gold)."""
    head = f"{INSTRUCTION}\n" if instruction else ""
    solved = "".join(f"Document: {s['text']}\nJSON: {record_json(s['gold'])}\n" for s in shots)
    return f"{head}{solved}Document: {text}\nJSON:"


def extraction_example(doc: dict, instruction: bool = False) -> W.Example:
    """A training example: the prompt is the document, the completion its gold JSON (the loss is on it alone)."""
    return W.Example(extraction_prompt(doc["text"], instruction=instruction), f" {record_json(doc['gold'])}\n",
                     "extraction", {"gold": doc["gold"]})


def fresh_documents(world: W.World, n: int, seed: int = 0) -> list[dict]:
    """n extraction documents, each about a different fresh person (a name of no person of `world`).

    Every name is new, so a model trained on them must copy the name from the document: it cannot memorise it.
    """
    check_int("n", n)
    rng = random.Random(f"extract-fresh-{world.config.seed}-{seed}")
    names: dict[str, None] = {}  # insertion-ordered set
    while len(names) < n:
        names.setdefault(W.fresh_name(rng, world))
    out = []
    for i, name in enumerate(names):
        one = W.World(world.config, (W.random_person(rng, name),), (), world.countries)
        out.extend(tasks.extraction_documents(one, 1, seed=seed * 1_000_003 + i))
    return out


def extraction_splits(world: W.World, n_train: int, n_test: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Training documents about fresh people (one document each) and test documents about held-out people."""
    train = fresh_documents(world, n_train, seed=seed)
    test = tasks.extraction_documents(world, n_test, seed=seed, split="heldout")
    leaked = W.leaked_names([d["text"] for d in train], {d["gold"]["name"] for d in test})
    if leaked:
        raise ValueError(f"held-out names {sorted(leaked)} occur in training documents")
    return train, test


# ---------------------------------------------------------------------------------------------------------
# Field-level scores
# ---------------------------------------------------------------------------------------------------------

def _norm(value) -> str | None:
    """A field value compared case- and space-insensitively; None stays None."""
    return None if value is None else str(value).strip().lower()


def field_scores(golds: Sequence[dict], preds: Sequence[dict | None],
                 fields: Sequence[str] = FIELDS) -> dict[str, dict[str, float]]:
    """Per-field and micro precision, recall and F1 of predicted records against gold records.

    A field counts as predicted when it is not null and as relevant when the gold is not null; a true positive
    is a predicted value equal to a non-null gold. An output that failed to parse (None) predicts nothing.
    """
    if len(golds) != len(preds) or not golds:
        raise ValueError(f"need as many predictions as gold records (and at least one), "
                         f"got {len(preds)} and {len(golds)}")
    unknown = [f for f in fields if f not in FIELDS]
    if unknown:
        raise ValueError(f"unknown fields {unknown}; accepted: {list(FIELDS)}")
    counts = {f: {"tp": 0, "fp": 0, "fn": 0} for f in fields}
    for gold, pred in zip(golds, preds):
        for f in fields:
            g, p = _norm(gold.get(f)), _norm((pred or {}).get(f))
            hit = p is not None and p == g
            counts[f]["tp"] += hit
            counts[f]["fp"] += p is not None and not hit
            counts[f]["fn"] += g is not None and not hit
    counts["micro"] = {k: sum(counts[f][k] for f in fields) for k in ("tp", "fp", "fn")}
    return {f: _prf(**c) for f, c in counts.items()}


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from counts (0 where undefined)."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}
