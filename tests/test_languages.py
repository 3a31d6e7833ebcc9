"""The parallel CLDR strings and the token-tax measures (hubhelpers.languages)."""

import pytest

from hubhelpers import languages as L


def test_parallel_strings_share_their_keys_and_have_no_empty_string():
    parallel = L.parallel_strings(("en", "yo", "am", "qu"))
    keys = [list(strings) for strings in parallel.values()]
    assert all(k == keys[0] for k in keys) and len(keys[0]) > 300  # territories alone are about 300
    assert all(text.strip() for strings in parallel.values() for text in strings.values())
    assert parallel["en"]["territories:FR"] == "France" and parallel["yo"]["territories:FR"] != "France"
    assert parallel["en"]["months:1"] == "January"


def test_the_default_languages_are_many_and_all_in_cldr():
    parallel = L.parallel_strings()
    assert len(parallel) >= 40 and L.REFERENCE in parallel
    assert len(parallel["en"]) >= 400


def test_an_unknown_locale_is_named():
    with pytest.raises(ValueError, match=r"\['xx-nowhere'\]"):
        L.parallel_strings(("en", "xx-nowhere"))


def test_parity_and_fertility_worked_by_hand():
    def count(text):  # one token per character, spaces included
        return len(text)

    parallel = {"en": {"a": "ab", "b": "c d"}, "xx": {"a": "abcd", "b": "cc dd ee"}}  # 5 vs 12 characters
    assert L.parity_ratios(count, parallel) == {"en": 1.0, "xx": 12 / 5}
    assert L.fertility(count, parallel["en"]) == 5 / 3  # 5 tokens, 3 words
    with pytest.raises(ValueError, match="'zz' is not among"):
        L.parity_ratios(count, parallel, reference="zz")


def test_unk_rate_and_script():
    def tokenize(text):
        return ["[UNK]" if not ch.isascii() else ch for ch in text]

    assert L.unk_rate(tokenize, {"a": "ab", "b": "ሰላ"}, "[UNK]") == 0.5
    assert L.script_of({"a": "ሰላም"}) == "ETHIOPIC" and L.script_of({"a": "Ọjọ́ Ajé"}) == "LATIN"


def test_the_shipped_tokenizer_taxes_other_scripts():
    from hubhelpers.models import load_tokenizer

    parallel = L.parallel_strings(("en", "am", "fr"))
    ratios = L.parity_ratios(L.hf_counter(load_tokenizer()), parallel)
    assert ratios["am"] > 2 * ratios["fr"] > 1.0  # a Latin-script language pays less than an Ethiopic one


def test_costly_words_are_frequent_and_cut_by_the_tokenizer():
    from hubhelpers.models import load_tokenizer

    tok = load_tokenizer()
    texts = ["Bolami-ne kwoushei Arvel-sa wonshi.", "Deroki-ne kwoushei Brisk-sa wonshi.", "Kaki-ne the lives."]
    words = L.costly_words(tok, texts, k=5)
    assert words[:2] == [" kwoushei", " wonshi"] or words[:2] == [" wonshi", " kwoushei"]
    assert " the" not in words and " lives" not in words  # once only, and one token each
    assert L.costly_words(tok, texts, k=1) == words[:1]
    with pytest.raises(ValueError, match="k"):
        L.costly_words(tok, texts, k=0)
