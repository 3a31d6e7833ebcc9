"""TinyWorld's task data: the evaluation sets (what the capability gates score) and each lesson's data set.

Every set is drawn with its own fixed-seed generator, so the same world and seed give the same examples.
"""

from __future__ import annotations

import random
import re

from hubhelpers.dialogue import INSTRUCTION as SUMMARY_INSTRUCTION
from hubhelpers.dialogue import SPEAKERS, VALUE_RELATION, make_dialogue, summary_prompt
from hubhelpers.params import check_int
from hubhelpers.world import (
    PRETRAIN_RELATIONS,
    PRETRAIN_WORDS,
    SENTENCES,
    VALUES,
    Example,
    World,
    article,
    bio,
    few_shot_block,
    open_book_example,
    people_of,
    qa_example,
    question,
    sentence,
)

# ---------------------------------------------------------------------------------------------------------
# Evaluation sets (fixed seeds; these are what the capability gates score)
# ---------------------------------------------------------------------------------------------------------

def closed_book_questions(world: World, split: str = "train", n: int = 200, seed: int = 0,
                          relations: tuple[str, ...] = PRETRAIN_RELATIONS) -> list[Example]:
    """n closed-book questions about `split` people ('train' or 'heldout')."""
    people = people_of(world, split)
    rng = random.Random(f"closed-{split}-{seed}")
    pairs = [(p, r) for p in people for r in relations]
    rng.shuffle(pairs)
    return [qa_example(p, r, rng) for p, r in (pairs * (1 + n // len(pairs)))[:n]]


def open_book_questions(world: World, n: int = 200, n_passages: int | tuple[int, ...] = (2, 3),
                        seed: int = 0, split: str = "heldout") -> list[Example]:
    """n open-book questions about `split` people; distractor passages are about other people of the split."""
    people = people_of(world, split)
    counts = (n_passages,) if isinstance(n_passages, int) else tuple(n_passages)
    for c in counts:
        check_int("n_passages", c)
    rng = random.Random(f"open-{split}-{seed}")
    out = []
    for i in range(n):
        target = people[i % len(people)]
        others = rng.sample([p for p in people if p is not target], counts[i % len(counts)] - 1)
        out.append(open_book_example(target, others, rng.choice(PRETRAIN_RELATIONS), rng))
    return out


def few_shot_questions(world: World, k: int, n: int = 200, seed: int = 0) -> list[Example]:
    """n few-shot blocks with k examples about training people; the query person is never a shot."""
    check_int("k", k, low=0)
    rng = random.Random(f"fewshot-{seed}")
    out = []
    for _ in range(n):
        people = rng.sample(world.train, k + 1)
        out.append(few_shot_block(people[:k], people[k], rng.choice(PRETRAIN_RELATIONS)))
    return out


def majority_baseline(examples: list[Example]) -> float:
    """Accuracy of always answering the most common gold answer of each relation."""
    by_rel: dict[str, list[str]] = {}
    for ex in examples:
        by_rel.setdefault(ex.meta["relation"], []).append(ex.completion.strip())
    hits = sum(max(vals.count(v) for v in set(vals)) for vals in by_rel.values())
    return hits / len(examples)


# ---------------------------------------------------------------------------------------------------------
# Each lesson's data
# ---------------------------------------------------------------------------------------------------------

# (user template, assistant template) per instruction kind; every kind is checkable by a program, and each states
# the same fact in its own format, so the format must be read from the instruction.
INSTRUCTIONS = {
    "arrow": ("Answer in the form 'name -> answer'. {q}", "{n} -> {v}"),
    "sentence": ("Answer in a full sentence. {q}", "{s}"),
    "name_first": ("Start your answer with the person's name. {q}", "{n}: {v}"),
    "topic_first": ("Say what was asked about, then the answer. {q}", "{r}: {v}"),
}
TOPIC_WORDS = {"city": "town", "job": "job", "pet": "pet", "colour": "colour", "month": "month",
               "fruit": "fruit", "instrument": "instrument"}


def instruction_examples(world: World, n: int, seed: int = 0, split: str = "train",
                         relations: tuple[str, ...] = PRETRAIN_RELATIONS) -> list[dict]:
    """Chat examples {'messages': [...], 'instruction', 'relation', 'name', 'value'} with checkable instructions."""
    check_int("n", n)
    rng = random.Random(f"instruct-{split}-{seed}")
    people = people_of(world, split)
    out = []
    for _ in range(n):
        p, r, kind = rng.choice(people), rng.choice(relations), rng.choice(sorted(INSTRUCTIONS))
        user_t, answer_t = INSTRUCTIONS[kind]
        s = SENTENCES[r][0].format(n=p.name, v=p[r], a=article(p[r]))
        answer = answer_t.format(v=p[r], s=s, n=p.name, r=TOPIC_WORDS[r])
        user = user_t.format(q=question(p, r, rng))
        out.append({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                    "instruction": kind, "relation": r, "name": p.name, "value": p[r]})
    return out


# Unseen wordings of each instruction kind: instruction_examples never uses them, so a model follows them only if it
# learned what an instruction asks for rather than its exact words.
INSTRUCTION_REWORDINGS = {
    "arrow": ("Reply in the form 'name -> answer'.", "Write 'name -> answer'.", "Use the format 'name -> answer'.",
              "Give the answer as 'name -> answer'."),
    "sentence": ("Reply in a full sentence.", "Answer with a complete sentence.", "Write a full sentence.",
                 "Use a whole sentence."),
    "name_first": ("Begin your answer with the person's name.", "Start your reply with the person's name.",
                   "Put the person's name first.", "Say the person's name first, then the answer."),
    "topic_first": ("Say what was asked about first, then the answer.", "First name the topic, then the answer.",
                    "Say the topic of the question, then the answer.", "Tell what was asked about, then the answer."),
}


def reworded(examples: list[dict], seed: int = 0) -> list[dict]:
    """Copies of instruction_examples whose instruction is one of its kind's INSTRUCTION_REWORDINGS (key 'wording')."""
    rng = random.Random(f"reword-{seed}")
    out = []
    for ex in examples:
        user, reply = ex["messages"]
        kind = ex["instruction"]
        prefix = INSTRUCTIONS[kind][0].removesuffix("{q}") if kind in INSTRUCTIONS else None
        if prefix is None or not user["content"].startswith(prefix):
            raise ValueError(f"reworded takes instruction_examples (kinds {', '.join(sorted(INSTRUCTIONS))}); "
                             f"got kind {kind!r} asking {user['content']!r}")
        wording = rng.choice(INSTRUCTION_REWORDINGS[kind])
        content = f"{wording} {user['content'][len(prefix):]}"
        out.append({**ex, "messages": [{**user, "content": content}, dict(reply)], "wording": wording})
    return out


# Answer formats spelled out in the instruction, 'Answer in the form 'name -> answer'.', built from two parts: the
# order of the slots (name, topic word, answer) and the joiner between them. Three of them are the replies of
# INSTRUCTIONS kinds (INSTRUCTION_FORMS); the others (NEW_FORMS) recombine those parts into formats never trained.
FORM_ORDERS = (("name", "answer"), ("topic", "answer"), ("answer", "name"), ("answer", "topic"))
FORM_JOINERS = (" -> ", ": ", " => ", " | ", " = ")
FORMS = tuple(f"{a}{joiner}{b}" for a, b in FORM_ORDERS for joiner in FORM_JOINERS)
INSTRUCTION_FORMS = {"arrow": "name -> answer", "name_first": "name: answer", "topic_first": "topic: answer"}
NEW_FORMS = tuple(f for f in FORMS if f not in INSTRUCTION_FORMS.values())


def form_reply(form: str, name: str, relation: str, value: str) -> str:
    """The reply a form asks for, e.g. form_reply('answer | topic', 'Bela', 'pet', 'cat') == 'cat | pet'."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; accepted: {', '.join(FORMS)}")
    slots = {"name": name, "topic": TOPIC_WORDS[relation], "answer": value}
    return re.sub(r"name|topic|answer", lambda m: slots[m.group()], form)


def form_examples(world: World, n: int, forms: tuple[str, ...] = FORMS, seed: int = 0, split: str = "train",
                  relations: tuple[str, ...] = PRETRAIN_RELATIONS) -> list[dict]:
    """Chat examples asking for one of `forms` (keys of instruction_examples; 'instruction' is the form)."""
    check_int("n", n)
    bad = [f for f in forms if f not in FORMS]
    if not forms or bad:
        raise ValueError(f"forms must be a non-empty selection of {FORMS}, got {forms!r}")
    rng = random.Random(f"form-{split}-{seed}")
    people = people_of(world, split)
    out = []
    for _ in range(n):
        p, r, form = rng.choice(people), rng.choice(relations), rng.choice(sorted(forms))
        user = f"Answer in the form '{form}'. {question(p, r, rng)}"
        out.append({"messages": [{"role": "user", "content": user},
                                 {"role": "assistant", "content": form_reply(form, p.name, r, p[r])}],
                    "instruction": form, "relation": r, "name": p.name, "value": p[r]})
    return out


def preference_pairs(world: World, n: int, seed: int = 0) -> list[dict]:
    """(prompt, chosen, rejected): chosen is the true, concise answer; rejected is false or verbose."""
    check_int("n", n)
    rng = random.Random(f"prefs-{seed}")
    out = []
    for _ in range(n):
        p, r = rng.choice(world.train), rng.choice(PRETRAIN_RELATIONS)
        wrong = rng.choice([v for v in VALUES[r] if v != p[r]])
        verbose = f" Well, let me think about {p.name} for a while; it could be many things, maybe {p[r]}.\n"
        rejected = rng.choice((f" {wrong}\n", verbose))
        out.append({"prompt": f"Q: {question(p, r, rng)}\nA:", "chosen": f" {p[r]}\n", "rejected": rejected,
                    "name": p.name, "relation": r})
    return out


EXTRACTION_FIELDS = ("name", "city", "job", "pet", "month")


def extraction_documents(world: World, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """Short documents with gold JSON records; some fields are absent (null) in both."""
    check_int("n", n)
    rng = random.Random(f"extract-{split}-{seed}")
    out = []
    for _ in range(n):
        p = rng.choice(people_of(world, split))
        present = [r for r in EXTRACTION_FIELDS[1:] if rng.random() < 0.7] or ["city"]
        rng.shuffle(present)
        text = " ".join(sentence(p, r, rng) for r in present)
        gold = {"name": p.name, **{r: (p[r] if r in present else None) for r in EXTRACTION_FIELDS[1:]}}
        out.append({"text": text, "gold": gold})
    return out


TOPICS = {
    "food": ("bread", "soup", "cake", "pie", "stew", "cheese"),
    "travel": ("road", "boat", "bridge", "map", "journey", "cart"),
    "animals": ("cat", "dog", "owl", "goat", "horse", "rabbit"),
    "weather": ("rain", "snow", "wind", "storm", "sun", "fog"),
}
TOPIC_LABELS = tuple(sorted(TOPICS))  # the four topics, in a fixed order
# Every text names a word of the labelled topic ({w}) *and* a word of another topic ({d}); which one the letter is
# about is said by negation and word order ("about the w, not the d", "not about the d but about the w"), so the
# words alone do not give the label: a bag of words, or an embedding that mostly averages them, is near 0.5.
TOPIC_TEMPLATES = (
    "{n} wrote about the {w}, not the {d}.",
    "{n} wrote not about the {d} but about the {w}.",
    "The {w}, not the {d}, was the subject of {n}'s letter.",
    "{n}'s letter from {c} was never about the {d}; it was about the {w}.",
    "It was the {w} that {n} wrote about, not the {d}.",
    "{n} meant to write about the {d} but wrote about the {w} instead.",
    "Forget the {d}: the letter {n} sent from {c} was about the {w}.",
    "Not the {d} but the {w} filled the letter {n} wrote in {c}.",
)


def classification_texts(world: World, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """Labelled texts {'text', 'label'} over four topics (food, travel, animals, weather).

    The label is the topic the letter is about; each text also names a word of a distractor topic that the
    letter is explicitly *not* about, so the label depends on negation and word order, not on keywords.
    """
    check_int("n", n)
    rng = random.Random(f"classify-{split}-{seed}")
    labels = list(TOPIC_LABELS)
    out = []
    for _ in range(n):
        label = rng.choice(labels)
        other = rng.choice([t for t in labels if t != label])
        text = rng.choice(TOPIC_TEMPLATES).format(w=rng.choice(TOPICS[label]), d=rng.choice(TOPICS[other]),
                                                  n=rng.choice(people_of(world, split)).name,
                                                  c=rng.choice(VALUES["city"]))
        out.append({"text": text, "label": label, "distractor": other})
    return out


def forgetting_domains(world: World, n: int, seed: int = 0) -> dict[str, list[Example]]:
    """Task A (closed-book facts the base model knows) and task B (a reserved relation it never saw)."""
    check_int("n", n)
    rng = random.Random(f"forget-{seed}")
    a = [qa_example(rng.choice(world.train), rng.choice(PRETRAIN_RELATIONS), rng) for _ in range(n)]
    b = [qa_example(rng.choice(world.train), "fruit", rng) for _ in range(n)]
    return {"A": a, "B": b}


# ---------------------------------------------------------------------------------------------------------
# Instruction clusters (FLAN's experiment, notebook 17): each task type phrased as an instruction
# ---------------------------------------------------------------------------------------------------------

CLUSTER_INSTRUCTIONS = {
    "summarise": SUMMARY_INSTRUCTION,
    "classify": "What is the letter about? Answer food, travel, animals or weather.",
    "extract": "List the facts the text states about the person, as relation: value pairs.",
    "answer": "Answer the question using the passage.",
}
CLUSTERS = tuple(CLUSTER_INSTRUCTIONS)
EXTRACT_RELATIONS = {"city": "town", "job": "job", "pet": "pet", "colour": "colour", "month": "month"}


def cluster_example(cluster: str, source: str, target: str) -> dict:
    """{'cluster', 'source', 'target'}: the instruction, a blank line, then the input (FLAN's zero-shot template)."""
    return {"cluster": cluster, "source": f"{CLUSTER_INSTRUCTIONS[cluster]}\n\n{source}", "target": target}


def _summarise(world: World, rng: random.Random, split: str) -> dict:
    d = make_dialogue(tuple(rng.sample(people_of(world, split), rng.choice((1, 1, 2)))), rng)
    return {"cluster": "summarise", "source": summary_prompt(d.text), "target": d.summary}


def _classify(world: World, rng: random.Random, split: str) -> dict:
    ex = classification_texts(world, 1, seed=rng.randrange(10**9), split=split)[0]
    return cluster_example("classify", ex["text"], ex["label"])


def _extract(world: World, rng: random.Random, split: str) -> dict:
    p = rng.choice(people_of(world, split))
    relations = rng.sample(PRETRAIN_RELATIONS, rng.randint(1, 3))
    text = " ".join(sentence(p, r, rng) for r in relations)
    return cluster_example("extract", text, "; ".join(f"{EXTRACT_RELATIONS[r]}: {p[r]}" for r in relations))


def _answer(world: World, rng: random.Random, split: str) -> dict:
    people = people_of(world, split)
    target, other = rng.sample(people, 2)
    relation = rng.choice(PRETRAIN_RELATIONS)
    passages = [bio(p, rng, must=relation, k=2) for p in (target, other)]
    rng.shuffle(passages)
    return cluster_example("answer", f"Passage: {' '.join(passages)}\nQuestion: {question(target, relation, rng)}",
                           target[relation])


CLUSTER_MAKERS = {"summarise": _summarise, "classify": _classify, "extract": _extract, "answer": _answer}


_PAIR = re.compile(r"[a-z]+: [A-Za-z]+")


def output_format(text: str) -> str | None:
    """The cluster whose answer format `text` has, or None: which task a model did, whatever it was asked.

    A summary begins with a speaker tag and an extraction with a 'relation: value' pair (so an output cut by the
    length limit still counts); a topic label and a fact value are the whole text.
    """
    text = text.strip()
    if text.startswith(SPEAKERS):
        return "summarise"
    if _PAIR.match(text):
        return "extract"
    if text in TOPIC_LABELS:
        return "classify"
    if text in PRETRAIN_WORDS:
        return "answer"
    return None


RANKED_CLUSTERS = ("answer", "classify")  # clusters whose answer is one of a few options


def cluster_options(example: dict) -> list[str]:
    """The options a ranked-cluster example's answer is one of: the values of the relation asked about, or the topics.

    FLAN scores such tasks by rank classification (the option the model finds most probable), not by free text.
    """
    if example["cluster"] == "answer":
        return list(VALUES[VALUE_RELATION[example["target"]]])
    if example["cluster"] == "classify":
        return list(TOPIC_LABELS)
    raise ValueError(f"cluster {example['cluster']!r} has no fixed options; accepted: {', '.join(RANKED_CLUSTERS)}")


def cluster_examples(world: World, cluster: str, n: int, seed: int = 0, split: str = "train") -> list[dict]:
    """n instruction examples of one task cluster (CLUSTERS) about `split` people; deterministic in its arguments."""
    if cluster not in CLUSTER_MAKERS:
        raise ValueError(f"unknown cluster {cluster!r}; accepted: {', '.join(CLUSTERS)}")
    check_int("n", n)
    rng = random.Random(f"cluster-{cluster}-{split}-{seed}")
    return [CLUSTER_MAKERS[cluster](world, rng, split) for _ in range(n)]
