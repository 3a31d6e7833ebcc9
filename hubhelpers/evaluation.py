"""Scoring a causal LM on TinyWorld examples: greedy answers, accuracy, log-probabilities, perplexity; ROUGE."""

from __future__ import annotations

import math

import torch

from .params import check_int


def batches(items: list, size: int):
    """Consecutive slices of `items` of length `size`."""
    check_int("batch_size", size)
    for i in range(0, len(items), size):
        yield items[i: i + size]


def greedy_answers(model, tokenizer, prompts: list[str], max_new_tokens: int = 8, batch_size: int = 64) -> list[str]:
    """Greedy continuation of each prompt, cut at the first newline or end of sequence."""
    out: list[str] = []
    for chunk in batches(list(prompts), batch_size):
        enc = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="left").to(model.device)
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        out.extend(t.split("\n")[0].strip() for t in texts)
    return out


def normalise(answer: str) -> str:
    """Lower-case, strip spaces and a trailing full stop."""
    return answer.strip().rstrip(".").strip().lower()


def answer_accuracy(model, tokenizer, examples, batch_size: int = 64) -> tuple[float, list[str]]:
    """Fraction of examples whose greedy answer equals the gold completion; also the answers."""
    if not examples:
        raise ValueError("answer_accuracy needs at least one example, got none")
    answers = greedy_answers(model, tokenizer, [ex.prompt for ex in examples], batch_size=batch_size)
    hits = [normalise(a) == normalise(ex.completion) for a, ex in zip(answers, examples)]
    return sum(hits) / len(hits), answers


def first_token_accuracy(model, tokenizer, examples, batch_size: int = 64) -> float:
    """Fast proxy of answer accuracy: argmax next token after the prompt equals the gold answer's first token."""
    hits = 0
    for chunk in batches(list(examples), batch_size):
        enc = tokenizer([ex.prompt for ex in chunk], return_tensors="pt", padding=True,
                        padding_side="left").to(model.device)
        gold = [tokenizer(ex.completion, add_special_tokens=False)["input_ids"][0] for ex in chunk]
        with torch.inference_mode():
            pred = model(**enc).logits[:, -1].argmax(-1).tolist()
        hits += sum(int(p == g) for p, g in zip(pred, gold))
    return hits / len(examples)


def token_logprobs(model, tokenizer, text: str) -> list[tuple[str, float]]:
    """log P(token_i | tokens_<i) for every token of `text` after the bos token."""
    enc = tokenizer(text, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        logp = model(**enc).logits.log_softmax(-1)[0, :-1]
    ids = enc["input_ids"][0, 1:]
    values = logp.gather(-1, ids[:, None])[:, 0].tolist()
    return [(tokenizer.decode([i]), v) for i, v in zip(ids.tolist(), values)]


def text_nll(model, tokenizer, texts: list[str], batch_size: int = 32) -> tuple[float, int]:
    """(total negative log-likelihood in nats, number of predicted tokens) of `texts` (bos not predicted)."""
    if not texts:
        raise ValueError("text_nll needs at least one text, got none")
    nll, count = 0.0, 0
    for chunk in batches(list(texts), batch_size):
        enc = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="right").to(model.device)
        with torch.inference_mode():
            logp = model(**enc).logits[:, :-1].log_softmax(-1)
        target = enc["input_ids"][:, 1:]
        mask = enc["attention_mask"][:, 1:].bool()
        picked = logp.gather(-1, target[..., None])[..., 0]
        nll -= picked[mask].sum().item()
        count += int(mask.sum())
    return nll, count


def perplexity(model, tokenizer, texts: list[str], batch_size: int = 32) -> float:
    """exp(mean negative log-likelihood per predicted token) over `texts` (bos not predicted)."""
    if not texts:
        raise ValueError("perplexity needs at least one text, got none")
    nll, count = text_nll(model, tokenizer, texts, batch_size)
    return math.exp(nll / count)


def word_perplexity(model, tokenizer, texts: list[str], batch_size: int = 32) -> float:
    """exp(negative log-likelihood per whitespace-separated word): comparable across tokenizers of the same text."""
    if not texts:
        raise ValueError("word_perplexity needs at least one text, got none")
    nll, _ = text_nll(model, tokenizer, texts, batch_size)
    return math.exp(nll / sum(len(t.split()) for t in texts))


ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def rouge_scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean F-measure of rouge1, rouge2 and rougeL over (prediction, reference) pairs (rouge-score, stemmed)."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"rouge_scores needs as many predictions as references, at least one, "
                         f"got {len(predictions)} predictions and {len(references)} references")
    from rouge_score import rouge_scorer  # imported here: it loads nltk, which takes a second or two

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    return {t: sum(s[t].fmeasure for s in scores) / len(scores) for t in ROUGE_TYPES}
