"""Retrieval-augmented generation on TinyWorld: a knowledge base, a persistent Chroma store, recall@k, an LCEL chain.

``build_knowledge_base`` writes one register document per town (the five facts of every resident, training and
held-out people alike) and remembers which sentence states which fact (the gold passages). ``split_documents`` cuts
them with LangChain's ``RecursiveCharacterTextSplitter`` and gives every chunk a deterministic id and a citation;
``build_store`` (re)creates a persistent Chroma collection from them with telemetry off and the caller's embeddings
(never Chroma's default embedding function, which would download a model). ``recall_at_k`` scores retrieval
against the gold chunks and ``rag_chain`` is retriever -> prompt -> LLM -> parser, returning the answer with the
sources it read.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chromadb.config import Settings
from filelock import FileLock
from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_text_splitters import RecursiveCharacterTextSplitter

from hubhelpers.evaluation import normalise

from . import world as W
from .params import check_int

SEPARATORS = ["\n\n", "\n", ". ", " ", ""]  # paragraph (one bio), line, sentence, word, character
RAG_TEMPLATE = "Context: {context}\nQ: {question}\nA:"  # the open-book format the course model was pretrained on
CLOSED_BOOK_TEMPLATE = "Q: {question}\nA:"


@dataclass(frozen=True)
class KnowledgeBase:
    """Documents (LangChain ``Document``s) and the sentence stating each fact: (name, relation) -> sentence."""

    documents: list
    facts: dict

    def gold_sentence(self, name: str, relation: str) -> str:
        """The sentence of the knowledge base that states `relation` of `name`."""
        if (name, relation) not in self.facts:
            raise ValueError(f"no fact ({name!r}, {relation!r}) in the knowledge base")
        return self.facts[(name, relation)]


def build_knowledge_base(world: W.World, seed: int = 0, relations: tuple[str, ...] = W.PRETRAIN_RELATIONS,
                         splits: tuple[str, ...] = ("train", "heldout")) -> KnowledgeBase:
    """One document per town: a paragraph per resident stating all `relations` (deterministic for `seed`)."""
    for relation in relations:
        W.check_relation(relation)
    if "city" not in relations:
        raise ValueError(f"relations must include 'city' (documents are grouped by town), got {relations!r}")
    by_split = {"train": world.train, "heldout": world.heldout}
    people = []
    for split in splits:
        if split not in by_split:
            raise ValueError(f"unknown split {split!r}; accepted: 'train', 'heldout'")
        people.extend((p, split) for p in by_split[split])
    rng = random.Random(f"kb-{world.config.seed}-{seed}")
    facts: dict[tuple[str, str], str] = {}
    paragraphs: dict[str, list[tuple[str, str, str]]] = {}
    for person, split in people:
        order = list(relations)
        rng.shuffle(order)
        sentences = [W.sentence(person, r, rng) for r in order]
        facts.update({(person.name, r): s for r, s in zip(order, sentences)})
        paragraphs.setdefault(person["city"], []).append((person.name, split, " ".join(sentences)))
    documents = []
    for town in sorted(paragraphs):
        rows = paragraphs[town]
        rng.shuffle(rows)
        documents.append(Document(page_content="\n\n".join(text for _, _, text in rows),
                                  metadata={"source": f"register-{town.lower()}", "town": town}))
    return KnowledgeBase(documents, facts)


def split_documents(documents: Sequence, chunk_size: int = 200, chunk_overlap: int = 0,
                    names: Sequence[str] = ()) -> list:
    """RecursiveCharacterTextSplitter chunks with metadata 'chunk_id' (source#index) and 'people' (names in it)."""
    check_int("chunk_size", chunk_size)
    check_int("chunk_overlap", chunk_overlap, low=0)
    if chunk_overlap >= chunk_size:
        raise ValueError(f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})")
    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap,
                                              separators=SEPARATORS, keep_separator="end")
    chunks = splitter.split_documents(list(documents))
    counters: dict[str, int] = {}
    for chunk in chunks:
        source = chunk.metadata.get("source", "doc")
        index = counters.get(source, 0)
        counters[source] = index + 1
        chunk.metadata["chunk_id"] = f"{source}#{index}"
        chunk.metadata["people"] = ", ".join(sorted(W.leaked_names([chunk.page_content], set(names))))
    return chunks


def chunk_ids(chunks: Sequence) -> list[str]:
    """Deterministic ids: the chunk's citation plus a hash of its text (same chunks -> same ids)."""
    ids = [f"{c.metadata['chunk_id']}:{hashlib.sha1(c.page_content.encode()).hexdigest()[:10]}" for c in chunks]
    if len(set(ids)) != len(ids):
        raise ValueError("two chunks share an id; give every document a distinct 'source' metadata")
    return ids


def chroma_settings():
    """Chroma client settings for the course: anonymous telemetry off, the local store only."""
    return Settings(anonymized_telemetry=False)


def open_store(persist_directory, embeddings, collection_name: str = "tinyworld"):
    """The persistent LangChain Chroma collection at `persist_directory` with the caller's embeddings."""
    if embeddings is None:
        raise ValueError("embeddings must be given (e.g. hubhelpers.chains.minilm_embeddings()); "
                         "Chroma's default embedding function would download a model")
    return Chroma(collection_name=collection_name, embedding_function=embeddings,
                  persist_directory=str(persist_directory), client_settings=chroma_settings())


def build_store(chunks: Sequence, embeddings, persist_directory, collection_name: str = "tinyworld"):
    """Rebuild the collection from scratch (delete, create, add with deterministic ids): never duplicates."""
    if not chunks:
        raise ValueError("build_store needs at least one chunk, got none")

    Path(persist_directory).mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(persist_directory) / ".rebuild.lock")):  # one rebuild at a time, never half-written
        store = open_store(persist_directory, embeddings, collection_name)
        store.reset_collection()  # delete the old collection and create an empty one
        store.add_documents(list(chunks), ids=chunk_ids(chunks))
    return store


def store_size(store) -> int:
    """Number of records in the store's collection."""
    return len(store.get(include=[])["ids"])


def gold_chunk_ids(chunks: Sequence, sentence: str) -> set[str]:
    """Citations of the chunks that contain `sentence` whole (a fact cut in two by the splitter has no gold)."""
    return {c.metadata["chunk_id"] for c in chunks if sentence in c.page_content}


def recall_at_k(retrieved: Sequence[Sequence[str]], gold: Sequence[set[str]], ks: Sequence[int]) -> dict[int, float]:
    """For each k, the fraction of queries with a gold id among their first k retrieved ids."""
    if len(retrieved) != len(gold):
        raise ValueError(f"got {len(retrieved)} retrieved lists but {len(gold)} gold sets")
    if not retrieved:
        raise ValueError("recall_at_k needs at least one query, got none")
    for k in ks:
        check_int("k", k)
    return {k: sum(bool(set(r[:k]) & g) for r, g in zip(retrieved, gold)) / len(gold) for k in ks}


def retrieve(store, queries: Sequence[str], k: int, batch_queries: bool = False) -> tuple[list[list[str]], float]:
    """The chunk ids of the top-k chunks for each query, and the mean latency per query in milliseconds.

    One query at a time by default (what an interactive user waits for); `batch_queries=True` embeds all queries
    in one batch first, which is faster per query when many are known in advance.
    """
    check_int("k", k)
    if not queries:
        raise ValueError("retrieve needs at least one query, got none")
    start = time.perf_counter()
    if batch_queries:
        vectors = store.embeddings.embed_documents(list(queries))
        found = [store.similarity_search_by_vector(v, k=k) for v in vectors]
    else:
        found = [store.similarity_search(q, k=k) for q in queries]
    ms = 1000 * (time.perf_counter() - start) / len(queries)
    return [[d.metadata["chunk_id"] for d in docs] for docs in found], ms


def format_context(docs: Sequence) -> str:
    """Retrieved chunks as one context line (paragraph breaks become spaces, as in the pretraining passages)."""
    return " ".join(" ".join(d.page_content.split()) for d in docs)


def first_line(text: str) -> str:
    """The generated answer up to the first newline, stripped."""
    return text.split("\n")[0].strip()


def citations(docs: Sequence) -> list[str]:
    """The chunk ids of `docs` (what an answer cites)."""
    return [d.metadata.get("chunk_id", d.metadata.get("source", "?")) for d in docs]


def rag_chain(retriever, llm, template: str = RAG_TEMPLATE):
    """LCEL: {question} -> retriever -> prompt -> llm -> first line; returns {'answer', 'sources', 'context'}."""
    if "{context}" not in template or "{question}" not in template:
        raise ValueError(f"template must contain {{context}} and {{question}}, got {template!r}")
    prompt = PromptTemplate.from_template(template)
    answer = (RunnableLambda(lambda x: {"context": format_context(x["docs"]), "question": x["question"]})
              | prompt | llm | StrOutputParser() | RunnableLambda(first_line))
    return (RunnablePassthrough.assign(docs=RunnableLambda(lambda x: x["question"]) | retriever)
            | RunnablePassthrough.assign(answer=answer)
            | RunnableLambda(lambda x: {"question": x["question"], "answer": x["answer"],
                                        "sources": citations(x["docs"]), "context": format_context(x["docs"])}))


def closed_book_chain(llm, template: str = CLOSED_BOOK_TEMPLATE):
    """LCEL without retrieval: {question} -> prompt -> llm -> first line."""
    return PromptTemplate.from_template(template) | llm | StrOutputParser() | RunnableLambda(first_line)


def answer_correct(answers: Sequence[str], golds: Sequence[str]) -> list[bool]:
    """Per answer: equal to its gold after normalisation (case, spaces, final full stop)."""
    if len(answers) != len(golds):
        raise ValueError(f"got {len(answers)} answers but {len(golds)} gold answers")
    return [normalise(a) == normalise(g) for a, g in zip(answers, golds)]
