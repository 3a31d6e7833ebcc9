"""Answer confidence: teacher-forced scores, sampling, self-consistency, ROC/AUROC, abstention."""

import math
import random

import pytest

from hubhelpers import confidence as C


def test_answer_scores_match_the_batched_scorer_and_bound_the_entropy(tiny):
    from hubhelpers.prompting import continuation_logprobs

    model, tokenizer = tiny
    prompts = ["Q: Where does Ada live?\nA:", "Q: What pet does Bo have?\nA:"]
    answers = ["Arvel", "a cat"]
    scores = C.answer_scores(model, tokenizer, prompts, answers, batch_size=1)
    reference = continuation_logprobs(model, tokenizer, prompts, [" Arvel", " a cat"])
    for s, ref in zip(scores, reference):
        assert s.logprob == pytest.approx(ref, abs=1e-4)
        assert s.mean_logprob == pytest.approx(s.logprob / s.n_tokens)
        assert s.probability == pytest.approx(math.exp(s.logprob))
        assert 0.0 < s.mean_entropy <= math.log(model.config.vocab_size) + 1e-5
    # batching does not change the scores
    together = C.answer_scores(model, tokenizer, prompts, answers, batch_size=2)
    assert [s.logprob for s in together] == pytest.approx([s.logprob for s in scores], abs=1e-4)


@pytest.mark.parametrize("answers, match", [(["x"], "1 answers"), (["x", "  "], "non-empty")])
def test_answer_scores_reject_bad_answers(tiny, answers, match):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match=match):
        C.answer_scores(model, tokenizer, ["Q: a\nA:", "Q: b\nA:"], answers)


def test_sample_answers_gives_n_answers_per_prompt(tiny):
    import torch

    model, tokenizer = tiny
    torch.manual_seed(0)
    out = C.sample_answers(model, tokenizer, ["Q: Where does Ada live?\nA:", "Q: Who?\nA:"], 3, max_new_tokens=3)
    assert len(out) == 2 and all(len(s) == 3 and all(isinstance(a, str) for a in s) for s in out)
    assert all("\n" not in a for s in out for a in s)


@pytest.mark.parametrize("kwargs, match", [({"n_samples": 0}, "n_samples"), ({"n_samples": 2, "temperature": 0},
                                                                                 "temperature")])
def test_sample_answers_rejects_bad_settings(tiny, kwargs, match):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match=match):
        C.sample_answers(model, tokenizer, ["Q: a\nA:"], **kwargs)


def test_self_consistency_counts_agreeing_samples_after_normalising():
    samples = [["Arvel", "arvel.", "Brisk", " Arvel "], ["cat", "dog"]]
    assert C.self_consistency(samples, ["Arvel", "owl"]) == [0.75, 0.0]
    with pytest.raises(ValueError, match="2 sample lists but 1"):
        C.self_consistency(samples, ["Arvel"])


def test_auroc_of_perfect_inverted_and_random_detectors():
    correct = [True, True, False, False, True]
    assert C.detector_auroc([0.9, 0.8, 0.1, 0.2, 0.7], correct) == 1.0
    assert C.detector_auroc([0.1, 0.2, 0.9, 0.8, 0.0], correct) == 0.0
    rng = random.Random(0)
    labels = [rng.random() < 0.5 for _ in range(4000)]
    assert C.detector_auroc([rng.random() for _ in labels], labels) == pytest.approx(0.5, abs=0.03)
    # hand-computed: pairs (correct, wrong) = (0.6, 0.4) win, (0.3, 0.4) lose -> 0.5
    assert C.detector_auroc([0.6, 0.3, 0.4], [True, True, False]) == 0.5


def test_roc_runs_from_corner_to_corner_and_needs_both_classes():
    fpr, tpr, thresholds = C.detector_roc([0.9, 0.8, 0.1, 0.2], [True, False, True, False])
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert len(fpr) == len(tpr) == len(thresholds)
    with pytest.raises(ValueError, match="both correct and wrong"):
        C.detector_auroc([0.5, 0.6], [True, True])


def test_abstention_curve_trades_coverage_for_accuracy():
    curve = C.abstention_curve([0.9, 0.8, 0.3, 0.2], [True, True, False, True])
    assert [p.coverage for p in curve] == [0.25, 0.5, 0.75, 1.0]
    assert [p.accuracy for p in curve] == pytest.approx([1.0, 1.0, 2 / 3, 0.75])
    assert [p.hallucination_rate for p in curve] == [0.0, 0.0, 0.25, 0.25]
    assert curve[0].threshold == 0.9


def test_hallucination_rate_counts_answered_and_wrong_only():
    answered = [True, True, False, True]
    correct = [True, False, False, False]
    assert C.hallucination_rate(answered, correct) == 0.5
    with pytest.raises(ValueError, match="3 answered flags but 4"):
        C.hallucination_rate(answered[:3], correct)


@pytest.mark.parametrize("answer, expected", [("", True), ("I don't know.", True), ("Unknown", True),
                                              ("Arvel", False)])
def test_is_abstention(answer, expected):
    assert C.is_abstention(answer) is expected
