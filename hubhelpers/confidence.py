"""Answer confidence and hallucination: sequence probability, token entropy, self-consistency, ROC and abstention.

``answer_scores`` scores a given answer under the model (teacher forcing: log-probability of its tokens and the
entropy of each next-token distribution), ``sample_answers`` and ``self_consistency`` measure agreement across
sampled answers, ``detector_auroc`` / ``detector_roc`` judge a confidence signal as a detector of correct answers
(scikit-learn), and ``abstention_curve`` / ``hallucination_rate`` describe answering only above a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from sklearn.metrics import roc_auc_score, roc_curve

from .evaluation import batches, normalise
from .params import Float, check_int
from .prompting import continuation_distributions


@dataclass(frozen=True)
class AnswerScore:
    """How the model scores one answer: total and mean log-probability, mean next-token entropy (nats)."""

    logprob: float  # log P(answer tokens | prompt), summed
    mean_logprob: float  # the same per token
    mean_entropy: float  # mean over the answer's positions of H(next-token distribution), nats
    n_tokens: int

    @property
    def probability(self) -> float:
        """The answer's sequence probability P(answer | prompt)."""
        return math.exp(self.logprob)


def _check_pairs(prompts: Sequence[str], answers: Sequence[str]) -> None:
    """Same length, not empty, every answer non-empty."""
    if len(prompts) != len(answers):
        raise ValueError(f"got {len(prompts)} prompts but {len(answers)} answers")
    if not prompts:
        raise ValueError("need at least one prompt, got none")
    for answer in answers:
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError(f"every answer must be a non-empty string, got {answer!r}")


def answer_scores(model, tokenizer, prompts: Sequence[str], answers: Sequence[str],
                  batch_size: int = 64) -> list[AnswerScore]:
    """Score ' ' + answer after each prompt in one forward pass per batch (log-probability and entropy)."""
    _check_pairs(prompts, answers)
    pairs = [(tokenizer(p)["input_ids"], tokenizer(" " + a.strip(), add_special_tokens=False)["input_ids"])
             for p, a in zip(prompts, answers)]
    out: list[AnswerScore] = []
    for (_, c), dist in zip(pairs, continuation_distributions(model, tokenizer, pairs, batch_size)):
        picked = dist[torch.arange(len(c)), torch.tensor(c)]  # log P of each answer token
        entropy = -(dist.exp() * dist).sum(-1)
        out.append(AnswerScore(float(picked.sum()), float(picked.mean()), float(entropy.mean()), len(c)))
    return out


def sample_answers(model, tokenizer, prompts: Sequence[str], n_samples: int, temperature: float = 1.0,
                   max_new_tokens: int = 8, batch_size: int = 32) -> list[list[str]]:
    """n_samples answers per prompt, sampled from the full distribution at `temperature` (first line of each)."""
    check_int("n_samples", n_samples)
    Float(0).check("temperature", temperature, {})
    if not prompts:
        raise ValueError("need at least one prompt, got none")
    out: list[list[str]] = []
    for chunk in batches(list(prompts), batch_size):
        enc = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="left").to(model.device)
        with torch.inference_mode():
            gen = model.generate(**enc, do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0,
                                 num_return_sequences=n_samples, max_new_tokens=max_new_tokens,
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        lines = [t.split("\n")[0].strip() for t in texts]
        out.extend(lines[i: i + n_samples] for i in range(0, len(lines), n_samples))
    return out


def self_consistency(samples: Sequence[Sequence[str]], references: Sequence[str]) -> list[float]:
    """For each question, the fraction of sampled answers equal to the reference answer (after normalise)."""
    if len(samples) != len(references):
        raise ValueError(f"got {len(samples)} sample lists but {len(references)} reference answers")
    if any(len(s) == 0 for s in samples):
        raise ValueError("every question needs at least one sampled answer")
    return [sum(normalise(a) == normalise(ref) for a in s) / len(s) for s, ref in zip(samples, references)]


def _check_detector(scores: Sequence[float], correct: Sequence[bool]) -> None:
    """Same length, and both classes present (a ROC curve needs positives and negatives)."""
    if len(scores) != len(correct):
        raise ValueError(f"got {len(scores)} scores but {len(correct)} labels")
    n_pos = sum(bool(c) for c in correct)
    if n_pos == 0 or n_pos == len(correct):
        raise ValueError(f"need both correct and wrong answers for a ROC curve, got {n_pos} correct of {len(correct)}")


def detector_auroc(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """Area under the ROC curve of `scores` as a detector of correct answers (1 = perfect, 0.5 = chance)."""
    _check_detector(scores, correct)
    return float(roc_auc_score([int(bool(c)) for c in correct], list(scores)))


def detector_roc(scores: Sequence[float], correct: Sequence[bool]) -> tuple[list[float], list[float], list[float]]:
    """(false-positive rates, true-positive rates, thresholds) of `scores` detecting correct answers."""
    _check_detector(scores, correct)
    fpr, tpr, thresholds = roc_curve([int(bool(c)) for c in correct], list(scores))
    return fpr.tolist(), tpr.tolist(), thresholds.tolist()


@dataclass(frozen=True)
class AbstentionPoint:
    """Answering only when confidence >= threshold: the share answered and the accuracy of those answers."""

    threshold: float
    coverage: float
    accuracy: float
    hallucination_rate: float  # answered and wrong, over all questions


def abstention_curve(scores: Sequence[float], correct: Sequence[bool]) -> list[AbstentionPoint]:
    """One point per distinct confidence value, from the strictest threshold (fewest answers) to answering all."""
    if len(scores) != len(correct):
        raise ValueError(f"got {len(scores)} scores but {len(correct)} labels")
    if not scores:
        raise ValueError("need at least one score, got none")
    n = len(scores)
    points = []
    for t in sorted(set(scores), reverse=True):
        answered = [bool(c) for s, c in zip(scores, correct) if s >= t]
        hits = sum(answered)
        points.append(AbstentionPoint(float(t), len(answered) / n, hits / len(answered), (len(answered) - hits) / n))
    return points


def hallucination_rate(answered: Sequence[bool], correct: Sequence[bool]) -> float:
    """Fraction of questions answered (not abstained) with a wrong answer."""
    if len(answered) != len(correct):
        raise ValueError(f"got {len(answered)} answered flags but {len(correct)} correctness flags")
    if not answered:
        raise ValueError("need at least one question, got none")
    return sum(bool(a) and not bool(c) for a, c in zip(answered, correct)) / len(answered)


def is_abstention(answer: str) -> bool:
    """True when an answer says nothing: empty, or an explicit 'I don't know' / 'unknown'."""
    text = normalise(answer)
    return text in ("", "unknown", "i don't know", "i do not know", "not known")
