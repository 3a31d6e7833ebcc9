"""Published model scales, tokens per parameter, Chinchilla's 20 tokens per parameter and 6·N·D compute."""

import dataclasses
import math

import pytest

from hubhelpers import carbon
from hubhelpers import scale as S


def test_published_models_are_the_papers_figures():
    sizes = {m.name: (m.params, m.tokens) for m in S.PUBLISHED_MODELS}
    assert sizes == {"GPT-2 1.5B": (1.5e9, None), "GPT-3 175B": (175e9, 300e9), "Chinchilla 70B": (70e9, 1.4e12),
                     "Llama 2 7B": (7e9, 2e12), "Llama 2 13B": (13e9, 2e12), "Llama 2 70B": (70e9, 2e12)}
    assert all(m.source and m.url.startswith("https://") for m in S.PUBLISHED_MODELS)
    assert "WebText" in S.published_model("GPT-2 1.5B").source  # a data size, not an invented token count


def test_gpt3_and_llama2_are_read_from_carbon_not_retyped():
    for name in ("GPT-3 175B", "Llama 2 7B", "Llama 2 13B", "Llama 2 70B"):
        run, model = carbon.published_run(name), S.published_model(name)
        assert (model.params, model.tokens) == (run.params, run.tokens)


def test_entries_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        S.PUBLISHED_MODELS[0].params = 1.0


def test_tokens_per_param_places_the_models_around_chinchilla():
    ratio = {m.name: S.tokens_per_param(m.params, m.tokens) for m in S.PUBLISHED_MODELS if m.tokens is not None}
    assert ratio["Chinchilla 70B"] == pytest.approx(S.CHINCHILLA_TOKENS_PER_PARAM)
    assert ratio["GPT-3 175B"] == pytest.approx(300 / 175)  # far fewer tokens than compute-optimal
    assert ratio["Llama 2 7B"] > ratio["Llama 2 13B"] > ratio["Llama 2 70B"] > S.CHINCHILLA_TOKENS_PER_PARAM
    assert S.tokens_per_param(4, 10) == 2.5


def test_compute_optimal_tokens_is_twenty_per_parameter():
    assert S.compute_optimal_tokens(70e9) == pytest.approx(S.published_model("Chinchilla 70B").tokens)
    assert S.compute_optimal_tokens(3) == 60


def test_compute_flops_is_six_n_d_and_none_without_tokens():
    chinchilla = S.published_model("Chinchilla 70B")
    assert S.compute_flops(chinchilla) == pytest.approx(6 * 70e9 * 1.4e12)
    assert S.compute_flops(S.published_model("GPT-3 175B")) == pytest.approx(3.15e23)
    assert S.compute_flops(S.published_model("GPT-2 1.5B")) is None
    assert S.compute_flops(S.ModelScale("toy", 1000, 20_000, "here")) == 6 * 1000 * 20_000


@pytest.mark.parametrize("call,match", [(lambda: S.tokens_per_param(0, 10), "params"),
                                        (lambda: S.tokens_per_param(10, -1), "tokens"),
                                        (lambda: S.tokens_per_param(10, None), "tokens"),
                                        (lambda: S.compute_optimal_tokens(math.nan), "params"),
                                        (lambda: S.compute_flops(S.ModelScale("bad", -1, 5, "")), "params")])
def test_bad_inputs_raise_naming_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match="'GPT-5'.*Chinchilla 70B"):
        S.published_model("GPT-5")
