"""Batched scoring equals one-at-a-time scoring, whatever the padding side the tokenizer was left with."""

import math

import pytest

from hubhelpers import evaluation as E
from hubhelpers import tasks
from hubhelpers import world as W


@pytest.mark.parametrize("side", ["left", "right"])
def test_perplexity_matches_token_logprobs(tiny, side):
    model, tok = tiny
    tok.padding_side = side
    texts = ["Bo lives in Arvel.\n", "Kuzobo works as a baker. Kuzobo owns a cat.\n"]
    logps = [lp for t in texts for _, lp in E.token_logprobs(model, tok, t)]
    assert E.perplexity(model, tok, texts) == pytest.approx(math.exp(-sum(logps) / len(logps)), rel=1e-4)
    assert tok.padding_side == side


@pytest.mark.parametrize("side", ["left", "right"])
def test_greedy_answers_batched_equal_single(tiny, side):
    model, tok = tiny
    tok.padding_side = side
    exs = tasks.closed_book_questions(W.make_world(), "train", 5)
    batched = E.greedy_answers(model, tok, [ex.prompt for ex in exs], batch_size=5)
    single = [E.greedy_answers(model, tok, [ex.prompt])[0] for ex in exs]
    assert batched == single
    assert E.first_token_accuracy(model, tok, exs, batch_size=5) == E.first_token_accuracy(model, tok, exs, 1)


def test_word_perplexity_is_the_token_nll_spread_over_words():
    import math

    from hubhelpers.evaluation import perplexity, text_nll, word_perplexity
    from hubhelpers.models import load_model

    model, tok = load_model("tinyworld", device="cpu")
    texts = ["Bolami lives in Arvel.", "Deroki works as a baker by trade."]
    nll, count = text_nll(model, tok, texts)
    assert count == sum(len(tok(t)["input_ids"]) - 1 for t in texts)  # every token after bos is predicted
    assert math.isclose(perplexity(model, tok, texts), math.exp(nll / count))
    assert math.isclose(word_perplexity(model, tok, texts), math.exp(nll / 11))  # 4 + 7 words
