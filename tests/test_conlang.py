"""TinyWorld in a synthetic second language (hubhelpers.conlang), and growing a vocabulary for it."""

import random

import pytest
import torch

from hubhelpers import conlang as C
from hubhelpers import world as W


@pytest.fixture(scope="module")
def world() -> W.World:
    return W.make_world()


def test_the_same_seed_gives_the_same_language_and_another_seed_another(world):
    a, b, c = C.make_conlang(0), C.make_conlang(0), C.make_conlang(1)
    assert a.lexicon == b.lexicon and a.lexicon != c.lexicon
    people = world.train[:5]
    assert [a.bio(p, random.Random(3)) for p in people] == [b.bio(p, random.Random(3)) for p in people]


def test_every_word_is_its_own_and_no_english_word_survives(world):
    lang = C.make_conlang(0)
    assert len(set(lang.lexicon.values())) == len(lang.lexicon)  # one word per meaning
    english = {w.lower().strip(".,'") for text in W.SENTENCES.values() for t in text for w in t.split()}
    english |= {v.lower() for r in C.RELATIONS if r != "city" for v in W.VALUES[r]}
    for p in world.train[:20]:
        words = {w.split("-")[0].strip(".").lower() for w in lang.bio(p, random.Random(0)).split()}
        assert not (words - {p.name.lower(), p["city"].lower()}) & english


def test_a_sentence_is_verb_final_with_its_cases(world):
    lang, p = C.make_conlang(0), world.train[0]
    words = lang.sentence(p, "job").rstrip(".").split()
    assert words == [f"{p.name}-ne", lang.lexicon["trade"], f"{lang.lexicon[p['job']]}-ra", lang.lexicon["work"]]
    assert lang.sentence(p, "city").startswith(lang.prompt(p, "city") + f" {p['city']}-sa ")
    assert lang.bio(p, random.Random(0)).count(f"{p.name}-ne") == len(C.RELATIONS)


def test_bios_of_training_people_never_name_a_heldout_person(world):
    lang = C.make_conlang(0)
    texts = [lang.bio(p, random.Random(i)) for i, p in enumerate(world.train)]
    assert not W.leaked_names(texts, {p.name for p in world.heldout})
    assert all(p.name in lang.bio(p, random.Random(0)) for p in world.heldout[:5])


def test_a_relation_outside_the_language_is_refused(world):
    with pytest.raises(ValueError, match="'fruit'.*accepted: city"):
        C.make_conlang(0).prompt(world.train[0], "fruit")


def test_extend_vocabulary_adds_whole_words_initialised_from_their_pieces():
    from hubhelpers.models import extend_vocabulary, load_model

    model, tok = load_model("tinyworld", device="cpu")
    text = "Bolami-ne kwoushei Arvel-sa wonshi."
    grown, grown_tok = extend_vocabulary(model, tok, [" kwoushei", " wonshi", " lives"])  # ' lives' is one token
    assert len(grown_tok) == len(tok) + 2 and len(tok) == model.get_input_embeddings().weight.shape[0]
    ids = grown_tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) < len(tok(text, add_special_tokens=False)["input_ids"]) and grown_tok.decode(ids) == text
    new = grown_tok.convert_tokens_to_ids(" kwoushei")
    pieces = tok(" kwoushei", add_special_tokens=False)["input_ids"]
    emb = grown.get_input_embeddings().weight
    assert torch.allclose(emb[new], model.get_input_embeddings().weight[pieces].mean(0))
    assert torch.equal(emb[: len(tok)], model.get_input_embeddings().weight)  # old rows untouched
    assert model.get_input_embeddings().weight.shape[0] == len(tok)  # the original is not changed
    english = "Bolami lives in Arvel."
    with torch.inference_mode():
        before = model(**tok(english, return_tensors="pt")).logits
        after = grown(**grown_tok(english, return_tensors="pt")).logits[..., : len(tok)]
    assert torch.allclose(before, after, atol=1e-5)  # text without the new words: the same predictions
