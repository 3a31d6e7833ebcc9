"""Sampling beyond temperature: top-k and top-p (nucleus) filters on next-token logits, written out by hand.

``top_k_filter`` keeps the k highest logits, ``top_p_filter`` the smallest set of most probable tokens whose
probabilities add up to at least p; both set every other logit to -inf, so a softmax renormalises over what is kept.
``sampling_probs`` chains temperature, top-k and top-p in the order transformers' ``generate`` applies them
(``TemperatureLogitsWarper``, ``TopKLogitsWarper``, ``TopPLogitsWarper``), and ``kept_stats`` says how many tokens a
filter kept and how much of the unfiltered probability they held.
"""

from __future__ import annotations

import torch

from .params import Float, check_int


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Logits with all but the k largest per row set to -inf (ties with the k-th are kept; k >= vocab keeps all)."""
    check_int("k", k)
    k = min(k, logits.shape[-1])
    kth = logits.topk(k, dim=-1).values[..., -1:]  # the k-th largest logit of each row
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Logits with all but the smallest most-probable set of total probability >= p per row set to -inf."""
    Float(0, at_most=1).check("p", p, {})
    if p == 1:
        return logits.clone()  # every token is needed to reach a mass of 1
    # The same set found from the bottom: drop the least likely tokens while their total stays <= 1 - p. Summing in
    # this order, as transformers does, keeps the boundary identical on flat distributions over tens of thousands of
    # tokens, where a sum from the top rounds differently in the last bits.
    sorted_logits, order = logits.sort(-1)  # ascending: the least likely token first
    mass_up_to = sorted_logits.softmax(-1).cumsum(-1)  # mass of each token and of every less likely one
    drop_sorted = mass_up_to <= 1 - p  # a tail of mass <= 1 - p can go: what stays holds >= p
    drop_sorted[..., -1] = False  # the most likely token always stays
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sampling_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> torch.Tensor:
    """The distribution sampled from: softmax of logits / temperature, then top-k, then top-p (None: no filter)."""
    Float(0).check("temperature", temperature, {})
    scores = logits / temperature
    if top_k is not None:
        scores = top_k_filter(scores, top_k)
    if top_p is not None:
        scores = top_p_filter(scores, top_p)
    return scores.softmax(-1)


def kept_stats(logits: torch.Tensor, filtered: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the number of tokens a filter kept, and the probability they held under softmax(logits)."""
    if logits.shape != filtered.shape:
        raise ValueError(f"logits and filtered logits must have one shape, got {tuple(logits.shape)} and "
                         f"{tuple(filtered.shape)}")
    kept = torch.isfinite(filtered)
    return kept.sum(-1), (logits.softmax(-1) * kept).sum(-1)
