"""Top-k and top-p (nucleus) filters: hand examples, the library's warpers, renormalisation, bad input."""

import math

import pytest
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from hubhelpers import sampling as S

PROBS = torch.tensor([[0.5, 0.3, 0.15, 0.05]])  # already sorted, so kept sets read as prefixes


def kept(filtered: torch.Tensor) -> list[list[int]]:
    """Indices of the finite logits of each row."""
    return [torch.isfinite(row).nonzero().flatten().tolist() for row in filtered]


def test_top_k_keeps_the_k_largest_logits_and_their_ties():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [2.0, 2.0, 0.0, -1.0]])
    assert kept(S.top_k_filter(logits, 2)) == [[1, 2], [0, 1]]
    assert kept(S.top_k_filter(logits, 1)) == [[1], [0, 1]]  # a tie with the k-th is kept, as transformers does
    assert kept(S.top_k_filter(logits, 10)) == [[0, 1, 2, 3]] * 2  # k above the vocabulary keeps everything
    out = S.top_k_filter(logits, 2)
    assert torch.equal(out[0, [1, 2]], logits[0, [1, 2]]) and out[0, 0] == -math.inf  # kept logits untouched


@pytest.mark.parametrize("p, expected", [(0.1, [0]), (0.7, [0, 1]), (0.9, [0, 1, 2]), (0.99, [0, 1, 2, 3]),
                                         (1.0, [0, 1, 2, 3])])
def test_top_p_keeps_the_smallest_set_reaching_p(p, expected):
    assert kept(S.top_p_filter(PROBS.log(), p)) == [expected]


def test_top_p_works_on_unsorted_rows_and_is_the_smallest_such_set():
    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 3
    for p in (0.3, 0.6, 0.9):
        counts, mass = S.kept_stats(logits, S.top_p_filter(logits, p))
        assert bool((mass >= p - 1e-6).all())
        probs = logits.softmax(-1).sort(-1, descending=True).values
        one_fewer = torch.stack([probs[i, : n - 1].sum() for i, n in enumerate(counts.tolist())])
        assert bool((one_fewer < p).all())  # dropping the least likely kept token falls below p


@pytest.mark.parametrize("k", [1, 3, 17, 64])
def test_top_k_equals_transformers_warper(k):
    torch.manual_seed(1)
    logits = torch.randn(8, 64) * 2
    logits[0, :5] = 1.5  # a tie
    ours, theirs = S.top_k_filter(logits, k), TopKLogitsWarper(top_k=k)(None, logits)
    assert kept(ours) == kept(theirs)
    assert torch.allclose(ours.softmax(-1), theirs.softmax(-1), atol=1e-7)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.8, 0.95, 0.999])
def test_top_p_equals_transformers_warper(p):
    torch.manual_seed(2)
    logits = torch.randn(16, 200) * torch.linspace(0.5, 5, 16)[:, None]  # flat to peaked rows
    ours, theirs = S.top_p_filter(logits, p), TopPLogitsWarper(top_p=p)(None, logits)
    assert kept(ours) == kept(theirs)
    assert torch.allclose(ours.softmax(-1), theirs.softmax(-1), atol=1e-7)


@pytest.mark.parametrize("p", [0.5, 0.8, 0.95])
def test_top_p_keeps_transformers_boundary_on_a_flat_large_vocabulary(p):
    """A random model's near-uniform 32k-token distribution: rounding in the cumulative sum decides the boundary."""
    torch.manual_seed(0)
    logits = torch.randn(8, 32_000) * 0.005  # a summation from the top put the boundary one token off here
    ours, theirs = S.top_p_filter(logits, p), TopPLogitsWarper(top_p=p)(None, logits)
    assert torch.equal(ours.isfinite(), theirs.isfinite())


def test_sampling_probs_chains_temperature_top_k_top_p_as_generate_does():
    torch.manual_seed(3)
    logits = torch.randn(4, 100) * 3
    chain = LogitsProcessorList([TemperatureLogitsWarper(2.0), TopKLogitsWarper(20), TopPLogitsWarper(0.7)])
    expected = chain(None, logits.clone()).softmax(-1)
    ours = S.sampling_probs(logits, temperature=2.0, top_k=20, top_p=0.7)
    assert torch.allclose(ours, expected, atol=1e-7)
    assert torch.allclose(S.sampling_probs(logits, 0.5), (logits / 0.5).softmax(-1))  # no filter: plain softmax


def test_filtering_renormalises_the_kept_probabilities():
    probs = S.sampling_probs(PROBS.log(), top_p=0.7)
    assert probs.tolist()[0] == pytest.approx([0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0])
    probs = S.sampling_probs(PROBS.log(), top_k=3)
    assert probs.tolist()[0] == pytest.approx([0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0])


def test_kept_stats_counts_tokens_and_their_unfiltered_mass():
    counts, mass = S.kept_stats(PROBS.log(), S.top_k_filter(PROBS.log(), 2))
    assert counts.tolist() == [2] and mass.tolist() == pytest.approx([0.8])
    with pytest.raises(ValueError, match=r"one shape, got \(1, 4\) and \(4,\)"):
        S.kept_stats(PROBS.log(), PROBS[0])


@pytest.mark.parametrize("call, match", [
    (lambda: S.top_k_filter(PROBS, 0), "k must be an int >= 1, got 0"),
    (lambda: S.top_k_filter(PROBS, True), "k must be an int >= 1, got True"),
    (lambda: S.top_p_filter(PROBS, 0), r"p must be a number in \(0, 1\], got 0"),
    (lambda: S.top_p_filter(PROBS, 1.5), r"p must be a number in \(0, 1\], got 1.5"),
    (lambda: S.sampling_probs(PROBS, temperature=0), "temperature must be a number > 0, got 0"),
])
def test_bad_settings_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
