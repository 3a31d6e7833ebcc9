"""Prompting helpers on a tiny random model: templates, window truncation, batched scoring, normalised accuracy."""

import random

import pytest
import torch

from hubhelpers import prompting as P
from hubhelpers import tasks
from hubhelpers import world as W
from hubhelpers.evaluation import token_logprobs


def test_templates_render_the_same_question(tiny, world):
    _, tok = tiny
    ex = tasks.closed_book_questions(world, "train", 1)[0]
    q = P.question_of(ex.prompt)
    assert P.render_prompt("qa", ex) == ex.prompt
    assert P.render_prompt("cloze", ex).startswith(ex.meta["name"])
    for template in P.TEMPLATES:
        text = P.render_prompt(template, ex, tok)
        assert template == "cloze" or q in text
    chat = P.render_prompt("chat", ex, tok)
    assert "<|user|>" in chat and chat.rstrip().endswith("<|assistant|>")
    ids = tok(chat)["input_ids"]
    assert ids.count(tok.bos_token_id) == 1  # the template's bos is not doubled by the tokenizer's


def test_template_errors_name_the_bad_value(tiny, world):
    ex = tasks.closed_book_questions(world, "train", 1)[0]
    with pytest.raises(ValueError, match="'poem'.*qa"):
        P.render_prompt("poem", ex)
    with pytest.raises(ValueError, match="tokenizer"):
        P.render_prompt("chat", ex)
    with pytest.raises(ValueError, match="no 'Q:"):
        P.question_of("Bolami lives in")


def test_question_of_open_book_prompt(world):
    ex = tasks.open_book_questions(world, 1, 2)[0]
    q = P.question_of(ex.prompt)
    assert q.endswith("?") and "Context" not in q and ex.meta["name"] in q


@pytest.mark.parametrize(("answer", "norm"), [(" Arvel\n", "arvel"), ("a baker.", "baker"), ("An owl", "owl"),
                                              ("parrot. Bo lives in", "parrot"), ("", ""), ("the", "the")])
def test_normalise_answer(answer, norm):
    assert P.normalise_answer(answer) == norm


def test_accuracy_normalises_and_checks_lengths():
    assert P.accuracy(["a baker.", "Owl", "cat"], [" baker\n", " owl\n", " dog\n"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 answers but 1"):
        P.accuracy(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="at least one"):
        P.accuracy([], [])


def test_truncate_to_window_keeps_the_end(tiny):
    _, tok = tiny
    text = " ".join(f"Sentence number {i} is here." for i in range(40)) + "\nQ: Where?\nA:"
    for window in (8, 33, 64):
        kept, dropped = P.truncate_to_window(tok, text, window)
        assert P.token_count(tok, kept) <= window
        assert P.token_count(tok, kept) >= window - 2  # at most a merge or two lost at the cut
        assert dropped + kept == text and text.endswith(kept)
    assert P.truncate_to_window(tok, "short", 50) == ("short", "")
    with pytest.raises(ValueError, match="window must be an int >= 2"):
        P.truncate_to_window(tok, text, 1)


def test_fill_to_distance(tiny):
    _, tok = tiny
    fillers = [f"Filler {i} says nothing." for i in range(50)]
    text = P.fill_to_distance(tok, "Bo owns a cat.", fillers, 40, "\nQ: What pet does Bo have?\nA:")
    assert text.startswith("Bo owns a cat.") and text.endswith("\nA:")
    assert P.token_count(tok, text) - P.token_count(tok, "") >= 40
    shorter = P.fill_to_distance(tok, "Bo owns a cat.", fillers, 40 - 12, "\nA:")
    assert len(shorter) < len(text)
    with pytest.raises(ValueError, match="ran out of filler"):
        P.fill_to_distance(tok, "Bo owns a cat.", fillers[:1], 500, "")
    with pytest.raises(ValueError, match="distance must be"):
        P.fill_to_distance(tok, "x", fillers, -1, "")


def test_continuation_logprobs_batched_equals_single(tiny):
    model, tok = tiny
    prompts = ["Q: Where does Bo live?\nA:", "Bo has a pet", "x", "Context: Bo lives in Arvel.\nQ: Where?\nA:"]
    conts = [" Arvel", " cat.", " owl", " Arvel\n"]
    batched = P.continuation_logprobs(model, tok, prompts, conts, batch_size=4)
    single = P.continuation_logprobs(model, tok, prompts, conts, batch_size=1)
    assert batched == pytest.approx(single, abs=1e-4)
    # equals the sum of per-token log-probs of the continuation inside the joined text
    n_cont = len(tok(conts[0], add_special_tokens=False)["input_ids"])
    joined = token_logprobs(model, tok, prompts[0] + conts[0])
    assert batched[0] == pytest.approx(sum(lp for _, lp in joined[-n_cont:]), abs=1e-4)
    assert all(v < 0 for v in batched)
    with pytest.raises(ValueError, match="2 prompts but 1"):
        P.continuation_logprobs(model, tok, ["a", "b"], [" c"])


def test_choose_answers_picks_the_most_likely(tiny):
    model, tok = tiny
    prompts = ["Q: What pet does Bo have?\nA:", "Bo lives in"]
    cands = [list(W.VALUES["pet"]), list(W.VALUES["city"])]
    chosen = P.choose_answers(model, tok, prompts, cands, batch_size=3)
    for prompt, options, pick in zip(prompts, cands, chosen):
        scores = P.continuation_logprobs(model, tok, [prompt] * len(options), [" " + o for o in options])
        assert pick == options[int(torch.tensor(scores).argmax())]
    with pytest.raises(ValueError, match="at least one candidate"):
        P.choose_answers(model, tok, ["a"], [[]])


def test_retrieve_sentences_by_name():
    context = "Kapi lives in Dunmor. Vobipo's birthday is in May. By trade, Vobipo is a baker. Zeb was born in June."
    assert P.retrieve_sentences(context, "What is Vobipo's job?") == (
        "Vobipo's birthday is in May. By trade, Vobipo is a baker.")
    assert P.retrieve_sentences(context, "Where does Nobody live?") == ""


def test_few_shot_prompt_and_random_code():
    assert P.few_shot_prompt([("red", "owl"), ("blue", "cat")], "red", "=>") == "red => owl\nblue => cat\nred =>"
    assert P.few_shot_prompt([], "Bo") == "Bo ->"
    with pytest.raises(ValueError, match="arrow"):
        P.few_shot_prompt([], "Bo", " ")
    code = P.random_code(random.Random(0), ["a", "b", "c"], ["x", "y", "z", "w"])
    assert set(code) == {"a", "b", "c"} and len(set(code.values())) == 3
    assert code == P.random_code(random.Random(0), ["a", "b", "c"], ["x", "y", "z", "w"])
    with pytest.raises(ValueError, match="at least 3 outputs"):
        P.random_code(random.Random(0), ["a", "b", "c"], ["x"])
