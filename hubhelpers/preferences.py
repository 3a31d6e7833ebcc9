"""Preference data of the RLHF lesson, and the judge of its replies: TinyWorld questions answered in styles.

The human preference taught here is a *style* the supervised model does not follow by default: asked a plain
question, answer in a full, true sentence that names the person ("Kopo lives in Arvel.") rather than a bare word,
an arrow, a label or a rambling hedge, and never with a false fact. The supervised (SFT) demonstrations mix all
these styles, as demonstrations written by many people do, so the SFT policy produces the preferred one only
some of the time: enough for a policy-gradient method to find it and reinforce it.

The reward model lives in `reward`, the policy-gradient loop in `rl`, DPO in `dpo`.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable, Sequence

from datasets import Dataset

from hubhelpers import tasks
from hubhelpers import world as W
from hubhelpers.params import Float, check_int

PREFERRED_STYLE = "sentence"
STYLES = {
    "sentence": "{s}",
    "word": "{v}",
    "arrow": "{n} -> {v}",
    "name_first": "{n}: {v}",
    "topic_first": "{r}: {v}",
    "verbose": "Well, let me think about {n} for a while; it could be many things, maybe {v}.",
}


def check_style(style: str) -> None:
    """Raise ValueError naming `style` and the accepted ones unless it is a key of STYLES."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; accepted: {', '.join(STYLES)}")


def styled_answer(person: W.Person, relation: str, style: str, value: str | None = None) -> str:
    """The answer to a question about `relation` of `person` in `style` (with `value` instead of the true one)."""
    check_style(style)
    W.check_relation(relation)
    v = person[relation] if value is None else value
    s = W.SENTENCES[relation][0].format(n=person.name, v=v, a=W.article(v))
    return STYLES[style].format(s=s, v=v, n=person.name, r=tasks.TOPIC_WORDS[relation])


def _question(rng: random.Random, people: Sequence[W.Person]) -> tuple[W.Person, str, str]:
    """A random (person, relation, plain question)."""
    p, r = rng.choice(people), rng.choice(W.PRETRAIN_RELATIONS)
    return p, r, W.question(p, r, rng)


DEMONSTRATION_STYLES = ("sentence", "word", "arrow", "name_first")
REJECTION_KINDS = ("style", "false_style", "false_sentence")


def style_demonstrations(world: W.World, n: int, seed: int = 0, styles: tuple[str, ...] = DEMONSTRATION_STYLES
                         ) -> list[dict]:
    """SFT chat examples: a plain question, answered truthfully in a style drawn uniformly from `styles`."""
    check_int("n", n)
    for style in styles:
        check_style(style)
    rng = random.Random(f"style-demos-{seed}")
    out = []
    for _ in range(n):
        p, r, q = _question(rng, world.train)
        style = rng.choice(styles)
        out.append({"messages": [{"role": "user", "content": q},
                                 {"role": "assistant", "content": styled_answer(p, r, style)}],
                    "style": style, "relation": r, "name": p.name, "value": p[r]})
    return out


def chat_preference_pairs(world: W.World, n: int, seed: int = 0, names: frozenset[str] | None = None,
                          kinds: tuple[str, ...] = ("style", "false_style")) -> list[dict]:
    """Conversational preference pairs: chosen = the true full sentence; rejected = another style or a false fact.

    Each pair's rejected reply is of a kind drawn uniformly from `kinds`: 'style' (the true value in another
    style, verbose included), 'false_style' (a false value in another style) or 'false_sentence' (a false value
    in the preferred sentence). `names` restricts the people asked about (to keep training and held-out pairs apart).
    """
    check_int("n", n)
    for kind in kinds:
        if kind not in REJECTION_KINDS:
            raise ValueError(f"unknown rejection kind {kind!r}; accepted: {', '.join(REJECTION_KINDS)}")
    people = [p for p in world.train if names is None or p.name in names]
    if not people:
        raise ValueError("no training person matches `names`")
    rng = random.Random(f"chat-prefs-{seed}")
    others = sorted(s for s in STYLES if s != PREFERRED_STYLE)
    out = []
    for _ in range(n):
        p, r, q = _question(rng, people)
        wrong = rng.choice([v for v in W.VALUES[r] if v != p[r]])
        kind = rng.choice(kinds)
        style = PREFERRED_STYLE if kind == "false_sentence" else rng.choice(others)
        rejected = styled_answer(p, r, style, None if kind == "style" else wrong)
        out.append({"prompt": [{"role": "user", "content": q}],
                    "chosen": [{"role": "assistant", "content": styled_answer(p, r, PREFERRED_STYLE)}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                    "kind": kind, "relation": r, "name": p.name, "value": p[r]})
    return out


def split_people(world: W.World, held_out_fraction: float = 0.25, seed: int = 0) -> tuple[frozenset, frozenset]:
    """(training names, held-out names): a random split of the world's training people."""
    Float(0, 1).check("held_out_fraction", held_out_fraction, {})
    names = sorted(p.name for p in world.train)
    random.Random(f"split-people-{seed}").shuffle(names)
    k = max(1, round(held_out_fraction * len(names)))
    return frozenset(names[k:]), frozenset(names[:k])


def pair_dataset(pairs: Sequence[dict]):
    """A ``datasets.Dataset`` with the prompt/chosen/rejected columns TRL's preference trainers read."""
    if not pairs:
        raise ValueError("pair_dataset needs at least one pair, got none")
    return Dataset.from_dict({k: [p[k] for p in pairs] for k in ("prompt", "chosen", "rejected")})


def as_chat(pair: dict) -> dict:
    """The pair's prompt as a finetune-style chat example (what chat_prompt / chat_responses read)."""
    return {"messages": list(pair["prompt"]), "name": pair["name"], "relation": pair["relation"],
            "value": pair["value"]}


# ---------------------------------------------------------------------------------------------------------
# Judging replies: which style, and whether the fact is true
# ---------------------------------------------------------------------------------------------------------

def style_pattern(style: str, name: str, relation: str) -> str:
    """The regular expression of a reply in `style` about `name`: the exact shape, any value of `relation`."""
    check_style(style)
    values = "|".join(re.escape(v) for v in W.VALUES[relation])
    pattern = re.escape(STYLES[style].replace("{s}", W.SENTENCES[relation][0]))
    for field_, regex in (("{n}", re.escape(name)), ("{v}", f"(?:{values})"), ("{a}", "an?"),
                          ("{r}", re.escape(tasks.TOPIC_WORDS[relation]))):
        pattern = pattern.replace(re.escape(field_), regex)
    return pattern


@functools.lru_cache(maxsize=8192)
def style_regex(style: str, name: str, relation: str) -> re.Pattern:
    """`style_pattern`, compiled once: the judge runs on every sampled reply, about hundreds of people, and re's own
    cache (512 patterns) would recompile them over and over."""
    return re.compile(style_pattern(style, name, relation))


def style_of(example: dict, reply: str) -> str:
    """Which style a reply is in (one of STYLES, or 'other'): its exact shape, stating any value of the relation.

    Run-on or garbled text ("Kopo works as a was works as a owns a pet horse.") is 'other', not a sentence.
    """
    text = reply.strip()
    for style in STYLES:
        if style_regex(style, example["name"], example["relation"]).fullmatch(text):
            return style
    return "other"


def preferred_rate(examples: Sequence[dict], replies: Sequence[str]) -> float:
    """Fraction of replies that are a full sentence stating the true value (the preferred behaviour)."""
    hits = [style_of(ex, r) == PREFERRED_STYLE and env_reward(ex, r) == 1.0 for ex, r in zip(examples, replies)]
    return sum(hits) / max(1, len(hits))


def env_reward(example: dict, reply: str) -> float:
    """Programmatic environment reward: 1 when the reply states the true value and no other value of the relation."""
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", reply)}
    stated = {v.lower() for v in W.VALUES[example["relation"]] if v.lower() in words}
    return float(stated == {example["value"].lower()})


def chosen_rate(score: Callable[[list, list], object], pairs: Sequence[dict]) -> float:
    """Fraction of pairs whose chosen reply `score(prompts, replies)` ranks above the rejected one."""
    prompts = [p["prompt"] for p in pairs]
    chosen = score(prompts, [p["chosen"][0]["content"] for p in pairs])
    rejected = score(prompts, [p["rejected"][0]["content"] for p in pairs])
    return float((chosen > rejected).float().mean())
