"""Encoder-decoder (T5) models: sentinel tokens, span corruption, (source, target) batches, the loss, generation.

The course's seq2seq model is a small `T5ForConditionalGeneration` that shares the decoder-only model's tokenizer
plus T5's sentinel tokens `<extra_id_0>`, `<extra_id_1>`, ... Every function here also takes a hub T5 (FLAN-T5's
tokenizer has the sentinels already): sources and targets are tokenised without special tokens and closed by the
tokenizer's eos, as T5's own tokenizer does.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from transformers import T5Config, T5ForConditionalGeneration

from .evaluation import batches
from .params import check_int
from .training import IGNORE_INDEX, TrainConfig, TrainResult, train

N_SENTINELS = 32  # enough for a passage of ~200 tokens at 15% noise and spans of 3


def sentinel_tokens(n: int = N_SENTINELS) -> list[str]:
    """T5's sentinel tokens: '<extra_id_0>', '<extra_id_1>', ..."""
    check_int("n", n)
    return [f"<extra_id_{i}>" for i in range(n)]


def add_sentinels(tokenizer, n: int = N_SENTINELS):
    """A copy of `tokenizer` with n sentinel tokens added as special tokens (skipped when decoding)."""
    tok = copy.deepcopy(tokenizer)
    tok.add_tokens(sentinel_tokens(n), special_tokens=True)
    return tok


def sentinel_ids(tokenizer) -> list[int]:
    """Ids of <extra_id_0>, <extra_id_1>, ... in order; a ValueError for a tokenizer without them."""
    vocab = tokenizer.get_vocab()
    ids = []
    while f"<extra_id_{len(ids)}>" in vocab:
        ids.append(vocab[f"<extra_id_{len(ids)}>"])
    if not ids:
        raise ValueError(f"{type(tokenizer).__name__} has no sentinel tokens <extra_id_0>...: "
                         f"use seq2seq.add_sentinels(tokenizer) or a T5 tokenizer")
    return ids


@dataclass(frozen=True)
class Seq2SeqShape:
    """Shape of a small T5 (transformers' T5Config names)."""

    d_model: int = 128
    d_ff: int = 512
    d_kv: int = 32
    num_heads: int = 4
    num_layers: int = 2  # encoder blocks
    num_decoder_layers: int = 2
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128


def build_t5(shape: Seq2SeqShape, tokenizer) -> T5ForConditionalGeneration:
    """A freshly initialised T5 of `shape` for `tokenizer` (decoding starts from the pad token, as in T5)."""
    cfg = T5Config(vocab_size=len(tokenizer), **asdict(shape), dropout_rate=0.0, feed_forward_proj="relu",
                   tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                   eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    return T5ForConditionalGeneration(cfg)


def random_partition(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` split into `parts` positive integers at random cut points."""
    if not 1 <= parts <= total:
        raise ValueError(f"cannot split {total} into {parts} positive parts")
    cuts = sorted(rng.sample(range(1, total), parts - 1))
    return [b - a for a, b in zip([0, *cuts], [*cuts, total])]


def span_corruption(ids: Sequence[int], sentinels: Sequence[int], rng: random.Random, noise_density: float = 0.15,
                    mean_span: float = 3.0, word_starts: Sequence[bool] | None = None) -> tuple[list[int], list[int]]:
    """T5's pre-training objective on one token sequence: (input, target).

    About `noise_density` of the tokens, in spans of mean length `mean_span`, are cut out; each span becomes one
    sentinel in the input, and the target lists every sentinel followed by the tokens it replaced. With
    `word_starts` (one flag per token: a word begins here) the units are whole words, not tokens: a span never cuts a
    word, so a name split into several tokens is hidden whole or not at all (whole-word masking), and `mean_span`
    counts words.
    """
    if not 0 < noise_density < 1:
        raise ValueError(f"noise_density must lie in (0, 1), got {noise_density!r}")
    if mean_span < 1:
        raise ValueError(f"mean_span must be at least 1, got {mean_span!r}")
    if word_starts is not None and len(word_starts) != len(ids):
        raise ValueError(f"word_starts has {len(word_starts)} flags for {len(ids)} tokens; give one per token")
    units = words(ids, word_starts) if word_starts is not None else [[i] for i in ids]
    n = len(units)
    if n < 2:
        unit = "tokens" if word_starts is None else "words"
        raise ValueError(f"span corruption needs at least 2 {unit}, got {n}")
    n_noise = min(max(1, round(n * noise_density)), n - 1)
    n_spans = max(1, min(round(n_noise / mean_span), n - n_noise, len(sentinels)))
    noise, keep = random_partition(n_noise, n_spans, rng), random_partition(n - n_noise, n_spans, rng)
    source, target, at = [], [], 0
    for i, (k, m) in enumerate(zip(keep, noise)):  # kept units, then a hidden span, n_spans times
        source += [*joined_units(units[at: at + k]), sentinels[i]]
        target += [sentinels[i], *joined_units(units[at + k: at + k + m])]
        at += k + m
    return source, target


def salient_corruption(ids: Sequence[int], sentinels: Sequence[int], word_starts: Sequence[bool],
                       salient: Sequence[bool]) -> tuple[list[int], list[int]]:
    """Salient span masking (Guu et al. 2020): (input, target) with exactly the flagged words hidden.

    `salient` has one flag per word (see `words`); each run of flagged words becomes one sentinel span, as in
    span_corruption. It teaches recall: the hidden words are facts, not random text.
    """
    units = words(ids, word_starts)
    if len(salient) != len(units):
        raise ValueError(f"salient has {len(salient)} flags for {len(units)} words; give one per word")
    source, target, span = [], [], -1
    for i, (unit, hide) in enumerate(zip(units, salient)):
        if hide and (i == 0 or not salient[i - 1]):
            span += 1
            if span >= len(sentinels):
                raise ValueError(f"{span + 1} salient spans but only {len(sentinels)} sentinels")
            source.append(sentinels[span])
            target.append(sentinels[span])
        (target if hide else source).extend(unit)
    if span < 0:
        raise ValueError("no salient word to hide")
    return source, target


def words(ids: Sequence[int], word_starts: Sequence[bool]) -> list[list[int]]:
    """`ids` grouped into words: a new group at each flagged token (and at the first token)."""
    groups: list[list[int]] = []
    for i, (t, start) in enumerate(zip(ids, word_starts)):
        if start or i == 0:
            groups.append([])
        groups[-1].append(t)
    return groups


def joined_units(units: Sequence[Sequence[int]]) -> list[int]:
    """The token ids of consecutive units, in order."""
    return [t for unit in units for t in unit]


def word_start_flags(tokenizer, ids: Sequence[int]) -> list[bool]:
    """One flag per token: True where a word begins: a space marker (byte-level BPE's 'Ġ', SentencePiece's '▁') or
    a token that does not start with a letter or digit (punctuation is a unit of its own, so 'Arvel.' is two)."""
    return [tok.startswith(("Ġ", "▁")) or not tok[:1].isalnum() for tok in tokenizer.convert_ids_to_tokens(list(ids))]


def text_ids(tokenizer, text: str, max_len: int) -> list[int]:
    """`text` as token ids closed by eos (no bos: T5's convention), cut to max_len tokens."""
    check_int("max_len", max_len, low=2)
    ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_len - 1)["input_ids"]
    return [*ids, tokenizer.eos_token_id]


def pad_pairs(pairs: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict:
    """(source ids, target ids) pairs as a right-padded batch: input_ids, attention_mask, labels (-100 on pads)."""
    if not pairs:
        raise ValueError("pad_pairs needs at least one pair, got none")
    width_s, width_t = max(len(s) for s, _ in pairs), max(len(t) for _, t in pairs)
    return {
        "input_ids": torch.tensor([s + [pad_id] * (width_s - len(s)) for s, _ in pairs]),
        "attention_mask": torch.tensor([[1] * len(s) + [0] * (width_s - len(s)) for s, _ in pairs]),
        "labels": torch.tensor([t + [IGNORE_INDEX] * (width_t - len(t)) for _, t in pairs]),
    }


def encode_pairs(tokenizer, sources: Sequence[str], targets: Sequence[str], max_source: int = 256,
                 max_target: int = 64) -> dict:
    """Texts (source, target) as a padded batch for a seq2seq model, each side closed by eos."""
    if len(sources) != len(targets):
        raise ValueError(f"got {len(sources)} sources but {len(targets)} targets")
    return pad_pairs([(text_ids(tokenizer, s, max_source), text_ids(tokenizer, t, max_target))
                      for s, t in zip(sources, targets)], tokenizer.pad_token_id)


def token_nll(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(NLL of every target token, 0 on padding; the labels), both (batch, target length), on the model's device."""
    batch = {k: v.to(model.device) for k, v in batch.items()}
    logits = model(**batch).logits  # (batch, target length, vocab); T5 shifts the labels right itself
    nll = F.cross_entropy(logits.float().transpose(1, 2), batch["labels"], ignore_index=IGNORE_INDEX,
                          reduction="none")
    return nll, batch["labels"]


def seq2seq_loss(model, batch: dict):
    """Cross-entropy of the targets, averaged over each example's tokens, then over examples (as training.py)."""
    nll, labels = token_nll(model, batch)
    scored = (labels != IGNORE_INDEX).sum(1).clamp(min=1)
    return (nll.sum(1) / scored).mean()


def pair_sampler(tokenizer, pairs: Sequence[tuple[str, str]], max_source: int = 256, max_target: int = 64):
    """sample_batch(rng, progress, size) for training.train: `size` (source, target) pairs drawn without replacement."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("pair_sampler needs at least one (source, target) pair, got none")

    def sample(rng: random.Random, progress: float, size: int) -> dict:
        chosen = rng.sample(pairs, min(size, len(pairs)))
        return encode_pairs(tokenizer, [s for s, _ in chosen], [t for _, t in chosen], max_source, max_target)

    return sample


def train_pairs(model, tokenizer, pairs: Sequence[tuple[str, str]], cfg: TrainConfig,
                progress: bool = True) -> TrainResult:
    """Fine-tune a seq2seq model on (source, target) pairs with the course's loop (training.train), seq2seq loss."""
    return train(model, tokenizer, pair_sampler(tokenizer, pairs), cfg, progress=progress, loss_fn=seq2seq_loss)


def generated_ids(model, tokenizer, sources: Sequence[str], max_new_tokens: int, max_source: int = 256,
                  batch_size: int = 64):
    """Greedy decoder output ids (a list per source, decoder start token first), in batches of `batch_size`."""
    for chunk in batches(list(sources), batch_size):
        enc = pad_pairs([(text_ids(tokenizer, s, max_source), [0]) for s in chunk], tokenizer.pad_token_id)
        with torch.inference_mode():
            gen = model.generate(input_ids=enc["input_ids"].to(model.device),
                                 attention_mask=enc["attention_mask"].to(model.device),
                                 max_new_tokens=max_new_tokens, do_sample=False)
        yield from gen.tolist()


def generate(model, tokenizer, sources: Sequence[str], max_new_tokens: int = 48, max_source: int = 256,
             batch_size: int = 64) -> list[str]:
    """Greedy output of the seq2seq model for each source text, special tokens dropped."""
    return [tokenizer.decode(ids, skip_special_tokens=True).strip()
            for ids in generated_ids(model, tokenizer, sources, max_new_tokens, max_source, batch_size)]


def fill_spans(model, tokenizer, sources: Sequence[str], max_new_tokens: int = 12, max_source: int = 256,
               batch_size: int = 64) -> list[str]:
    """The text the model writes for the first sentinel of each source: from <extra_id_0> to the next sentinel or eos.

    A span-corruption model writes every sentinel of its input and then, often, more sentinels it imagines; only
    the first span answers the question a single-gap probe asks.
    """
    sentinels = sentinel_ids(tokenizer)
    stops = {*sentinels, tokenizer.eos_token_id, tokenizer.pad_token_id}
    out: list[str] = []
    for row in generated_ids(model, tokenizer, sources, max_new_tokens, max_source, batch_size):
        span = row[row.index(sentinels[0]) + 1:] if sentinels[0] in row else []
        end = next((i for i, t in enumerate(span) if t in stops), len(span))
        out.append(tokenizer.decode(span[:end]).strip())
    return out


def target_logprobs(model, tokenizer, sources: Sequence[str], targets: Sequence[str], max_source: int = 256,
                    max_target: int = 64, batch_size: int = 64) -> list[float]:
    """log P(target | source) for each pair: the sum over the target's tokens, its closing eos included."""
    if len(sources) != len(targets):
        raise ValueError(f"got {len(sources)} sources but {len(targets)} targets")
    out: list[float] = []
    for chunk in batches(list(zip(sources, targets)), batch_size):
        batch = encode_pairs(tokenizer, [s for s, _ in chunk], [t for _, t in chunk], max_source, max_target)
        with torch.inference_mode():
            nll, _ = token_nll(model, batch)
        out += (-nll.sum(1)).tolist()
    return out


def rank_options(model, tokenizer, sources: Sequence[str], options: Sequence[Sequence[str]],
                 max_source: int = 256, batch_size: int = 64) -> list[str]:
    """For each source, the option the model finds most probable as its output (FLAN's rank classification)."""
    if len(sources) != len(options) or any(not o for o in options):
        raise ValueError(f"rank_options needs a non-empty option list per source, got {len(sources)} sources and "
                         f"{len(options)} option lists")
    flat = [(s, o) for s, opts in zip(sources, options) for o in opts]
    scores = iter(target_logprobs(model, tokenizer, [s for s, _ in flat], [o for _, o in flat], max_source,
                                  batch_size=batch_size))
    chosen = []
    for opts in options:
        row = [next(scores) for _ in opts]
        chosen.append(opts[row.index(max(row))])  # the first of equal scores
    return chosen


def attention_maps(model, tokenizer, source: str, target: str) -> dict[str, torch.Tensor]:
    """The last layer's attention weights, averaged over heads, for one (source, target) pair.

    {'encoder': (source, source), 'decoder': (target, target), 'cross': (target, source)}, each row a query
    position's weights over the keys. Computed on a copy that uses eager attention (fused kernels return none).
    """
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    batch = {k: v.to(model.device) for k, v in encode_pairs(tokenizer, [source], [target]).items()}
    with torch.inference_mode():
        out = eager(**batch, output_attentions=True)
    return {"encoder": out.encoder_attentions[-1][0].mean(0).cpu(),
            "decoder": out.decoder_attentions[-1][0].mean(0).cpu(),
            "cross": out.cross_attentions[-1][0].mean(0).cpu()}


def earlier_positions_changed(states, ids: Sequence[int], new_last: int, atol: float = 1e-5) -> float:
    """Share of positions before the last whose output changes when only the last input token changes.

    `states(ids tensor of shape (1, n)) -> (n, d)` is a stack of layers (an encoder, or a causal LM's hidden
    states). 1.0: every position sees the last token (bidirectional attention); 0.0: none does (causal attention).
    """
    if len(ids) < 2 or ids[-1] == new_last:
        raise ValueError("need at least 2 tokens and a new last token different from the old one")
    changed = list(ids[:-1]) + [new_last]
    with torch.inference_mode():
        a, b = states(torch.tensor([list(ids)])), states(torch.tensor([changed]))
    moved = (a[:-1] - b[:-1]).abs().amax(-1) > atol  # (n - 1,) one flag per earlier position
    return moved.float().mean().item()
