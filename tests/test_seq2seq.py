"""The encoder-decoder lesson's helpers: ROUGE (evaluation.rouge_scores) and loading a seq2seq model (models)."""

from fractions import Fraction

import pytest
import torch

from hubhelpers import models as M
from hubhelpers.evaluation import ROUGE_TYPES, rouge_scores

CAT = ("the cat sat on the mat", "the cat is on the mat")
# Worked by hand. Unigrams, clipped counts: the x2, cat, on, mat are shared: 5 of 6 on each side, so P = R = F = 5/6.
# Bigrams: prediction (the cat)(cat sat)(sat on)(on the)(the mat), reference (the cat)(cat is)(is on)(on the)(the mat):
# 3 of 5 shared, so F = 3/5. Longest common subsequence: "the cat on the mat", 5 of 6 tokens each side, so F = 5/6.
CAT_SCORES = {"rouge1": Fraction(5, 6), "rouge2": Fraction(3, 5), "rougeL": Fraction(5, 6)}


def test_rouge_of_a_pair_worked_by_hand():
    scores = rouge_scores([CAT[0]], [CAT[1]])
    assert set(scores) == set(ROUGE_TYPES) == {"rouge1", "rouge2", "rougeL"}
    for name, expected in CAT_SCORES.items():
        assert scores[name] == pytest.approx(float(expected))


def test_rouge_identical_disjoint_and_the_mean_over_pairs():
    same = "#Person2# tells #Person1# that Bolami lives in Arvel."
    assert rouge_scores([same], [same]) == pytest.approx(dict.fromkeys(ROUGE_TYPES, 1.0))
    assert rouge_scores(["red owl sings"], ["blue cat sleeps"]) == pytest.approx(dict.fromkeys(ROUGE_TYPES, 0.0))
    both = rouge_scores([CAT[0], same], [CAT[1], same])
    assert both == pytest.approx({name: float((value + 1) / 2) for name, value in CAT_SCORES.items()})


def test_rouge_stems_and_ignores_case_and_punctuation():
    assert rouge_scores(["Bolami LIVES in Arvel!"], ["bolami lived in arvel"])["rouge1"] == pytest.approx(1.0)


@pytest.mark.parametrize("predictions, references, match", [
    (["a"], ["a", "b"], "got 1 predictions and 2 references"),
    ([], [], "got 0 predictions and 0 references"),
])
def test_rouge_refuses_unequal_or_empty_lists(predictions, references, match):
    with pytest.raises(ValueError, match=match):
        rouge_scores(predictions, references)


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    """A tiny random T5ForConditionalGeneration with the course's tokenizer, saved as a local model directory."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = M.load_tokenizer("tinyworld")
    config = T5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1,
                      num_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("t5-tiny")
    T5ForConditionalGeneration(config).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def test_load_model_seq2seq_from_a_local_dir(t5_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = M.load_model(str(t5_dir), task="seq2seq-lm", device="cpu")
    assert type(model).__name__ == "T5ForConditionalGeneration" and model.config.is_encoder_decoder
    assert not model.training
    enc = tok(["#Person1#: Where does Bolami live?\n#Person2#: In Arvel."], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.dtype == torch.long and out.shape[0] == 1 and 1 < out.shape[1] <= 6
    assert out[0, 0].item() == tok.pad_token_id  # the decoder starts from decoder_start_token_id
    assert isinstance(tok.decode(out[0], skip_special_tokens=True), str)


def test_unknown_task_names_seq2seq_among_the_accepted(t5_dir):
    with pytest.raises(ValueError, match=r"unknown task 'translation'; accepted: .*seq2seq-lm"):
        M.load_model(str(t5_dir), task="translation", device="cpu")
