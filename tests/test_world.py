"""TinyWorld: determinism, held-out isolation, and the shape of every generated data set."""

import random

import pytest

from hubhelpers import mixture, tasks
from hubhelpers import world as W


@pytest.fixture(scope="module")
def world():
    return W.make_world()


def _training_texts(world, n=4000):
    """Every text a training or fine-tuning step could see, generated at scale."""
    texts = [ex.text for ex in mixture.pretraining_corpus(world, n)]
    rng = random.Random(0)  # the foundation run's stream, over all of its progress
    texts += [mixture.foundation_example(world, rng, i / n).text for i in range(n)]
    texts += [m["content"] for ex in tasks.instruction_examples(world, 500) for m in ex["messages"]]
    texts += [p["prompt"] + p["chosen"] + p["rejected"] for p in tasks.preference_pairs(world, 500)]
    texts += [d["text"] + str(d["gold"]) for d in tasks.extraction_documents(world, 500)]
    texts += [d["text"] for d in tasks.classification_texts(world, 500)]
    texts += [ex.text for dom in tasks.forgetting_domains(world, 300).values() for ex in dom]
    return texts


def test_same_seed_gives_byte_identical_output(world):
    again = W.make_world(W.WorldConfig(seed=0))
    assert again == world
    a = "".join(ex.text for ex in mixture.pretraining_corpus(world, 500))
    b = "".join(ex.text for ex in mixture.pretraining_corpus(again, 500))
    assert a.encode() == b.encode()
    assert mixture.fingerprint() == mixture.fingerprint()


def test_other_seed_gives_other_world(world):
    other = W.make_world(W.WorldConfig(seed=1))
    assert [p.name for p in other.train] != [p.name for p in world.train]
    assert mixture.fingerprint(W.WorldConfig(seed=1)) != mixture.fingerprint()


def test_split_sizes_and_unique_names(world):
    cfg = world.config
    assert len(world.train) == cfg.n_train and len(world.heldout) == cfg.n_heldout
    assert len(world.names) == cfg.n_train + cfg.n_heldout


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_heldout_people_appear_in_no_training_text(seed):
    world = W.make_world(W.WorldConfig(seed=seed))
    heldout = {p.name for p in world.heldout}
    texts = _training_texts(world)
    assert W.leaked_names(texts, heldout) == set()
    # the check is on whole words: training names do occur, so it is not vacuous
    assert len(W.leaked_names(texts, {p.name for p in world.train})) == len(world.train)


def test_leak_check_is_whole_word():
    assert W.leaked_names(["Bolamiko lives in Arvel."], {"Bolami"}) == set()
    assert W.leaked_names(["Bolami lives in Arvel."], {"Bolami"}) == {"Bolami"}


def test_reserved_relations_never_in_pretraining(world):
    text = " ".join(ex.text for ex in mixture.pretraining_corpus(world, 3000))
    for rel in W.RESERVED_RELATIONS:
        for template in W.SENTENCES[rel]:
            marker = template.split("{n}")[1].split("{")[0].strip()
            assert marker not in text, (rel, marker)


def test_open_book_answer_is_in_context_with_distractors(world):
    for n in (1, 2, 3):
        for ex in tasks.open_book_questions(world, 30, n):
            context = ex.prompt.split("\nQ:")[0]
            assert ex.completion.strip() in context
            assert ex.meta["n_passages"] == n
            heldout = {p.name for p in world.heldout}
            assert len(W.leaked_names([context], heldout)) == n


def test_closed_book_questions_match_facts(world):
    people = {p.name: p for p in world.train}
    for ex in tasks.closed_book_questions(world, "train", 50):
        assert ex.completion.strip() == people[ex.meta["name"]][ex.meta["relation"]]


def test_few_shot_blocks(world):
    zero = tasks.few_shot_questions(world, 0, 5)
    assert all("->" not in ex.prompt.split("\n")[0][:-3] for ex in zero)
    eight = tasks.few_shot_questions(world, 8, 5)
    assert all(ex.prompt.count("->") == 9 and ex.meta["name"] not in ex.prompt.split("\n")[:-1]
               for ex in eight)


def test_mapping_block_answer_defined_in_context():
    ex = mixture.mapping_block(random.Random(0), 6)
    shots = dict(line.split(" => ") for line in ex.prompt.split("\n")[:-1])
    assert shots[ex.meta["query"]] == ex.completion.strip()


def test_majority_baseline():
    exs = [W.Example("", f" {v}\n", "closed_book", {"relation": "pet"}) for v in ("cat", "cat", "dog", "owl")]
    assert tasks.majority_baseline(exs) == 0.5


def test_foundation_run_repeats_then_reads(world):
    mix = mixture.Mixture()
    rng = random.Random(0)
    early = [mixture.foundation_example(world, rng, 0.5 * mix.repeat_until, mix).kind for _ in range(50)]
    later = [mixture.foundation_example(world, rng, 0.9, mix).kind for _ in range(400)]
    assert set(early) == {"repeat"}
    assert set(later) == {"repeat", *mixture.READING_KINDS} == {"repeat", "open_book", "recall", "plain_reading"}
    assert later.count("repeat") / len(later) == pytest.approx(mix.keep_repeating, abs=0.06)


def test_main_run_draws_every_kind_and_several_passages(world):
    mix = mixture.Mixture()
    rng = random.Random(0)
    kinds = {mixture.pretraining_example(world, rng, p / 100, mix).kind for p in range(100) for _ in range(10)}
    assert kinds == {"bio", "closed_book", "open_book", "few_shot", "mapping", "recall", "plain_reading", "repeat"}
    assert {mixture.n_passages_for(rng, mix) for _ in range(200)} == {1, 2, 3, 4}


def test_mixture_weights_shift_towards_reading():
    mix = mixture.Mixture()
    kinds = mixture.PRETRAIN_KINDS
    early, late = mix.weights(kinds, 0.1), mix.weights(kinds, 0.9)
    assert sum(early) == pytest.approx(1) and sum(late) == pytest.approx(1)
    i = kinds.index("open_book")
    assert early[i] == mix.open_book and late[i] == mix.focus_open_book
    assert late[0] / late[2] == pytest.approx(early[0] / early[2])


def test_repeat_example_repeats_its_sequence(world):
    ex = mixture.repeat_example(world, random.Random(0))
    assert ex.prompt.endswith(" |") and ex.completion == f" {ex.prompt[:-2]}\n"
    assert 4 <= len(ex.prompt[:-2].split()) <= 20
    with pytest.raises(ValueError, match="max_words"):
        mixture.repeat_example(world, random.Random(0), 0)


@pytest.mark.parametrize("make", [mixture.recall_example, mixture.plain_reading_example])
def test_lookup_examples_have_one_unambiguous_answer(world, make):
    for seed in range(30):
        ex = make(world, random.Random(seed), 3)
        answer = ex.completion.strip()
        assert ex.prompt.count(f" {answer}") == 1  # the three values differ: only the asked name's value fits
        assert ex.prompt.count(ex.meta["name"]) == 2  # stated once, asked once
    with pytest.raises(ValueError, match="n"):
        make(world, random.Random(0), 0)


def test_later_lesson_data(world):
    chat = tasks.instruction_examples(world, 20)
    assert all([m["role"] for m in ex["messages"]] == ["user", "assistant"] for ex in chat)
    pairs = tasks.preference_pairs(world, 20)
    assert all(p["chosen"] != p["rejected"] for p in pairs)
    docs = tasks.extraction_documents(world, 20)
    assert all(set(d["gold"]) == set(tasks.EXTRACTION_FIELDS) for d in docs)
    assert any(v is None for d in docs for v in d["gold"].values())
    labels = {d["label"] for d in tasks.classification_texts(world, 100)}
    assert labels == set(tasks.TOPICS)
    dom = tasks.forgetting_domains(world, 10)
    assert {ex.meta["relation"] for ex in dom["B"]} == {"fruit"}


@pytest.mark.parametrize("call, match", [
    (lambda w: W.make_world(W.WorldConfig(seed=-1)), "seed"),
    (lambda w: W.make_world(W.WorldConfig(n_train=0)), "n_train"),
    (lambda w: tasks.closed_book_questions(w, "test"), "split"),
    (lambda w: tasks.few_shot_questions(w, -1), "k"),
    (lambda w: tasks.open_book_questions(w, 5, 0), "n_passages"),
    (lambda w: W.check_relation("height"), "accepted"),
    (lambda w: tasks.instruction_examples(w, 0), "n"),
])
def test_bad_input_is_named(world, call, match):
    with pytest.raises(ValueError, match=match):
        call(world)
