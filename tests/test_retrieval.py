"""Retrieval helpers: knowledge base, chunking, a persistent Chroma store without duplicates, recall@k, the chain."""

import pytest

from hubhelpers import retrieval as R
from hubhelpers import world as W


class WordEmbeddings:
    """A tiny deterministic LangChain-style embedder (hashed capitalised words: names), so tests need no model."""

    dim = 1024

    def _vec(self, text):
        import re
        import zlib

        v = [0.0] * self.dim
        for word in re.findall(r"[A-Z][a-z]+", text):
            v[zlib.crc32(word.encode()) % self.dim] += 1.0
        norm = sum(x * x for x in v) ** 0.5 or 1.0
        return [x / norm for x in v]

    def embed_documents(self, texts):
        return [self._vec(t) for t in texts]

    def embed_query(self, text):
        return self._vec(text)


@pytest.fixture(scope="module")
def small_world():
    return W.make_world(W.WorldConfig(n_train=6, n_heldout=4))


def test_knowledge_base_states_every_fact_of_every_person_once(small_world):
    kb = R.build_knowledge_base(small_world)
    text = "\n\n".join(d.page_content for d in kb.documents)
    people = small_world.train + small_world.heldout
    assert len(kb.facts) == len(people) * len(W.PRETRAIN_RELATIONS)
    for p in people:
        for r in W.PRETRAIN_RELATIONS:
            sentence = kb.gold_sentence(p.name, r)
            assert text.count(sentence) == 1 and p[r] in sentence and p.name in sentence
    # one document per town, each paragraph about a resident of that town
    for doc in kb.documents:
        for paragraph in doc.page_content.split("\n\n"):
            assert doc.metadata["town"] in paragraph
    assert R.build_knowledge_base(small_world).documents == kb.documents  # deterministic
    with pytest.raises(ValueError, match="'nobody'"):
        kb.gold_sentence("nobody", "city")
    with pytest.raises(ValueError, match="'test'"):
        R.build_knowledge_base(small_world, splits=("test",))


def test_split_documents_respects_the_size_and_cites_each_chunk(small_world):
    kb = R.build_knowledge_base(small_world)
    names = sorted(small_world.names)
    chunks = R.split_documents(kb.documents, 200, names=names)
    assert all(len(c.page_content) <= 200 for c in chunks)
    assert len({c.metadata["chunk_id"] for c in chunks}) == len(chunks)
    assert all(c.metadata["people"] and c.metadata["people"] in names for c in chunks)  # one bio, one person
    small = R.split_documents(kb.documents, 60, names=names)
    assert len(small) > len(chunks) and all(len(c.page_content) <= 60 for c in small)
    assert R.chunk_ids(chunks) == R.chunk_ids(R.split_documents(kb.documents, 200, names=names))
    with pytest.raises(ValueError, match="chunk_overlap"):
        R.split_documents(kb.documents, 50, 50)
    with pytest.raises(ValueError, match="chunk_size"):
        R.split_documents(kb.documents, 0)


def test_store_built_twice_on_disk_has_no_duplicates(small_world, tmp_path):
    kb = R.build_knowledge_base(small_world)
    chunks = R.split_documents(kb.documents, 200, names=sorted(small_world.names))
    R.build_store(chunks, WordEmbeddings(), tmp_path / "chroma", "unit_test")
    R.build_store(chunks, WordEmbeddings(), tmp_path / "chroma", "unit_test")
    reopened = R.open_store(tmp_path / "chroma", WordEmbeddings(), "unit_test")  # read back from disk
    assert R.store_size(reopened) == len(chunks)
    assert sorted(reopened.get(include=[])["ids"]) == sorted(R.chunk_ids(chunks))
    settings = reopened._client.get_settings()
    assert settings.anonymized_telemetry is False
    # the question about a person retrieves that person's chunk, and the citation comes back
    person = small_world.heldout[0]
    ids, ms = R.retrieve(reopened, [f"Where does {person.name} live?"], k=1)
    assert person.name in {c.metadata["chunk_id"]: c.metadata["people"] for c in chunks}[ids[0][0]] and ms > 0
    batched, _ = R.retrieve(reopened, [f"Where does {person.name} live?"], k=1, batch_queries=True)
    assert batched == ids


def test_open_store_refuses_to_run_without_embeddings(tmp_path):
    with pytest.raises(ValueError, match="download"):
        R.open_store(tmp_path, None)


def test_recall_at_k_on_a_hand_made_example():
    retrieved = [["a", "b", "c"], ["x", "y", "a"], ["q", "r", "s"]]
    gold = [{"a"}, {"a"}, {"z"}]
    assert R.recall_at_k(retrieved, gold, ks=(1, 2, 3)) == {1: 1 / 3, 2: 1 / 3, 3: 2 / 3}
    with pytest.raises(ValueError, match="3 retrieved lists but 2"):
        R.recall_at_k(retrieved, gold[:2], ks=(1,))
    with pytest.raises(ValueError, match="k must be"):
        R.recall_at_k(retrieved, gold, ks=(0,))


def test_gold_chunk_ids_need_the_whole_sentence():
    from langchain_core.documents import Document

    chunks = [Document("Ada lives in Arvel. Ada", metadata={"chunk_id": "d#0"}),
              Document("works as a baker.", metadata={"chunk_id": "d#1"}),
              Document("Bo lives in Brisk. Ada lives in Arvel.", metadata={"chunk_id": "e#0"})]
    assert R.gold_chunk_ids(chunks, "Ada lives in Arvel.") == {"d#0", "e#0"}
    assert R.gold_chunk_ids(chunks, "Ada works as a baker.") == set()


def test_rag_chain_puts_the_retrieved_passage_in_the_prompt_and_cites_it():
    from langchain_core.documents import Document
    from langchain_core.language_models.fake import FakeListLLM
    from langchain_core.runnables import RunnableLambda

    docs = [Document("Ada lives in\n\nArvel.", metadata={"chunk_id": "register-arvel#3"})]
    retriever = RunnableLambda(lambda q: docs)
    seen = []

    class Recording(FakeListLLM):
        def _call(self, prompt, *args, **kwargs):
            seen.append(prompt)
            return super()._call(prompt, *args, **kwargs)

    chain = R.rag_chain(retriever, Recording(responses=[" Arvel\nQ: more"]))
    out = chain.invoke({"question": "Where does Ada live?"})
    assert out["answer"] == "Arvel" and out["sources"] == ["register-arvel#3"]
    assert seen == ["Context: Ada lives in Arvel.\nQ: Where does Ada live?\nA:"]
    closed = R.closed_book_chain(FakeListLLM(responses=[" Brisk\n"]))
    assert closed.invoke({"question": "Where does Ada live?"}) == "Brisk"
    with pytest.raises(ValueError, match="context"):
        R.rag_chain(retriever, Recording(responses=["x"]), template="Q: {question}\nA:")


def test_answer_correct_normalises_case_and_full_stops():
    assert R.answer_correct(["Arvel.", "dog", ""], [" arvel\n", "cat", "x"]) == [True, False, False]
    with pytest.raises(ValueError, match="2 answers but 1"):
        R.answer_correct(["a", "b"], ["a"])
