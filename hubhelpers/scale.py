"""What makes a language model large: published parameter and training-token counts, tokens per parameter, and
Chinchilla's compute-optimal rule of about 20 training tokens per parameter.

Training compute is the 6·N·D estimate of `hubhelpers.carbon.training_flops`; GPT-3's and Llama 2's sizes are read
from `carbon.PUBLISHED_RUNS`, so each published number is typed once in the package.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubhelpers.carbon import published_run, training_flops
from hubhelpers.params import check_positive

# Hoffmann et al. 2022 (arXiv 2203.15556), Table 3: compute-optimal training tokens grow in proportion to the
# parameters, about 20 tokens per parameter (e.g. 1B parameters on 20.2B tokens, 10B on 205.1B).
CHINCHILLA_TOKENS_PER_PARAM = 20

GPT2_URL = "https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf"
GPT3_URL = "https://arxiv.org/abs/2005.14165"
CHINCHILLA_URL = "https://arxiv.org/abs/2203.15556"
LLAMA2_URL = "https://arxiv.org/abs/2307.09288"


@dataclass(frozen=True)
class ModelScale:
    """A model's parameters N and training tokens D (None where its source gives no token count), with a citation."""

    name: str
    params: float
    tokens: float | None
    source: str
    url: str = ""


def _published(name: str, source: str, url: str) -> ModelScale:
    """The carbon.PUBLISHED_RUNS entry `name` as a ModelScale with its citation."""
    run = published_run(name)
    return ModelScale(run.name, run.params, run.tokens, source, url)


PUBLISHED_MODELS: tuple[ModelScale, ...] = (
    # The GPT-2 paper gives its largest model's size (1542M, "1.5B") and 40 GB of WebText, not a token count.
    ModelScale("GPT-2 1.5B", 1.5e9, None, "Radford et al. 2019: 40 GB of WebText, no token count", GPT2_URL),
    _published("GPT-3 175B", "Brown et al. 2020, arXiv 2005.14165", GPT3_URL),
    ModelScale("Chinchilla 70B", 70e9, 1.4e12, "Hoffmann et al. 2022, arXiv 2203.15556", CHINCHILLA_URL),
    *(_published(f"Llama 2 {size}", "Touvron et al. 2023, arXiv 2307.09288", LLAMA2_URL)
      for size in ("7B", "13B", "70B")),
)


def published_model(name: str) -> ModelScale:
    """The PUBLISHED_MODELS entry called `name`, or a ValueError naming the known ones."""
    for model in PUBLISHED_MODELS:
        if model.name == name:
            return model
    raise ValueError(f"unknown model {name!r}; accepted: {', '.join(m.name for m in PUBLISHED_MODELS)}")


def tokens_per_param(params: float, tokens: float) -> float:
    """Training tokens per parameter, D / N."""
    return check_positive("tokens", tokens) / check_positive("params", params)


def compute_optimal_tokens(params: float) -> float:
    """Chinchilla's compute-optimal training tokens for N parameters: about 20·N."""
    return CHINCHILLA_TOKENS_PER_PARAM * check_positive("params", params)


def compute_flops(model: ModelScale) -> float | None:
    """Training compute 6·N·D of `model` in FLOPs, or None where its token count is unknown."""
    return None if model.tokens is None else training_flops(model.params, model.tokens)
