"""LangChain glue: offline MiniLM embeddings and the course's model as an LCEL-ready LLM."""

import math

import pytest

from hubhelpers.chains import minilm_embeddings, pipeline_llm
from hubhelpers.encoders import embed, load_encoder


def test_minilm_embeddings_match_the_course_encoder():
    texts = ["Ada lives in Lisbon.", "Who lives in Lisbon?", "A pet rabbit."]
    vectors = minilm_embeddings().embed_documents(texts)
    assert len(vectors) == 3 and len(vectors[0]) == 384
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vectors)
    model, tokenizer = load_encoder("minilm")
    ours = embed(model, tokenizer, texts)
    for row, theirs in zip(ours.tolist(), vectors):
        assert max(abs(a - b) for a, b in zip(row, theirs)) < 1e-4


def test_pipeline_llm_returns_only_the_continuation_and_leaves_the_tokenizer_alone(tiny_chat_model_dir):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import PromptTemplate

    from hubhelpers.models import load_model

    model, tokenizer = load_model(str(tiny_chat_model_dir))
    side = tokenizer.padding_side
    llm = pipeline_llm(model, tokenizer, max_new_tokens=4)
    chain = PromptTemplate.from_template("Q: {q}\nA:") | llm | StrOutputParser()
    out = chain.batch([{"q": "Where does Ada live?"}, {"q": "Who?"}])
    assert len(out) == 2 and all(isinstance(text, str) and "Q:" not in text for text in out)
    assert tokenizer.padding_side == side


@pytest.mark.parametrize("kwargs", [{"max_new_tokens": 0}, {"batch_size": -1}, {"max_new_tokens": 2.5}])
def test_pipeline_llm_rejects_bad_sizes(tiny_chat_model_dir, kwargs):
    from hubhelpers.models import load_model

    model, tokenizer = load_model(str(tiny_chat_model_dir))
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        pipeline_llm(model, tokenizer, **kwargs)


def test_minilm_embeddings_rejects_unknown_device():
    with pytest.raises(ValueError, match="'tpu'"):
        minilm_embeddings(device="tpu")
