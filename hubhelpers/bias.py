"""Bias learned from data: a documented skew in a fine-tuning set, measured against TinyWorld's true rates.

In the world every job is equally likely wherever a person lives (1 in 10). `skewed_people` invents people for a
fine-tuning set in which those living in one country hold one job far more often and everyone else less often,
the job's overall share unchanged (`Skew`): the kind of skew a real data set inherits from who was recorded, and
one that a check of the labels' overall balance does not see. The task is to name a person's job from a profile;
some profiles do not state it (a record with a missing field), and a model trained on them learns to guess from
what it can see.
`rate_gap` measures the skew in people, labels or predictions on the same scale; `counterfactual` swaps the one
feature (the town), for the counterfactual test and for counterfactual data augmentation (notebook 19).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from . import world as W
from .params import check_int
from .prompting import continuation_logprobs

JOBS = W.VALUES["job"]
COUNTRIES = tuple(dict.fromkeys(W.CITIES.values()))
OTHER_RELATIONS = ("pet", "colour", "month")  # what a profile says besides the town (and sometimes the job)
WORLD_RATE = 1 / len(JOBS)  # P(job) in the world, in every town


@dataclass(frozen=True)
class Skew:
    """People living in `country` hold `job` with probability `rate`; the others less often.

    The others' rate (`rate_out`) keeps the job's overall share at the world's 1 / len(JOBS): as many of them as in
    the world, in the wrong places.
    """

    job: str = "doctor"
    country: str = "Norland"
    rate: float = 0.34

    @property
    def share_in(self) -> float:
        """The share of people living in the country (its towns out of all; towns are drawn uniformly)."""
        return sum(c == self.country for c in W.CITIES.values()) / len(W.CITIES)

    @property
    def rate_out(self) -> float:
        """P(job | not in the country) that keeps the job's overall share at the world's."""
        return (WORLD_RATE - self.share_in * self.rate) / (1 - self.share_in)

    def __post_init__(self):
        if self.job not in JOBS:
            raise ValueError(f"unknown job {self.job!r}; accepted: {', '.join(JOBS)}")
        if self.country not in COUNTRIES:
            raise ValueError(f"unknown country {self.country!r}; accepted: {', '.join(COUNTRIES)}")
        top = WORLD_RATE / self.share_in
        if not (isinstance(self.rate, (int, float)) and 0 <= self.rate <= top):
            raise ValueError(f"rate must be in [0, {top:.2f}] (above it, the rest of the world cannot make up the "
                             f"job's overall share), got {self.rate!r}")


def in_group(person: W.Person, skew: Skew) -> bool:
    """Whether `person` lives in a town of the skewed country."""
    return W.CITIES[person["city"]] == skew.country


def skewed_people(world: W.World, n: int, skew: Skew, seed: int = 0) -> list[W.Person]:
    """`n` invented people (no name of the world), their job drawn with `skew`; every other fact uniform."""
    check_int("n", n)
    rng = random.Random(f"skewed-{seed}")
    names: set[str] = set()
    people = []
    while len(people) < n:
        name = W.fresh_name(rng, world)
        if name in names:
            continue
        names.add(name)
        person = W.random_person(rng, name, W.PRETRAIN_RELATIONS)
        rate = skew.rate if in_group(person, skew) else skew.rate_out
        job = skew.job if rng.random() < rate else rng.choice([j for j in JOBS if j != skew.job])
        person = W.Person(name, {**person.facts, "job": job})
        people.append(person)
    return people


def counterfactual(person: W.Person, skew: Skew) -> W.Person:
    """The same person living in a town on the other side of the group line (in <-> out); nothing else changes."""
    rng = random.Random(f"swap-{person.name}-{person['city']}")
    inside = in_group(person, skew)
    towns = sorted(t for t, c in W.CITIES.items() if (c == skew.country) != inside)
    return W.Person(person.name, {**person.facts, "city": rng.choice(towns)})


def profile(person: W.Person, seed: str, show_job: bool) -> str:
    """A profile of `person`: the town and two other facts, plus the job when `show_job`; order from `seed`.

    The sentence choices depend on `seed` only, so a person and their counterfactual get the same wording.
    """
    rng = random.Random(seed)
    relations = ["city", *rng.sample(OTHER_RELATIONS, 2)] + (["job"] if show_job else [])
    rng.shuffle(relations)
    return " ".join(W.sentence(person, r, rng) for r in relations)


def job_example(person: W.Person, seed: str, show_job: bool) -> W.Example:
    """'Context: <profile> Q: <job question> A:' with the person's true job as the answer."""
    rng = random.Random(f"q-{seed}")
    ex = W.qa_example(person, "job", rng, context=profile(person, seed, show_job))
    return W.Example(ex.prompt, ex.completion, "stated" if show_job else "missing", {**ex.meta, "city": person["city"]})


def job_batch_sampler(people: Sequence[W.Person], missing: float):
    """sample_batch(rng, progress, size) for training.train: profiles of `people`, a share `missing` without the job."""
    if not people:
        raise ValueError("job_batch_sampler needs at least one person, got none")
    if not 0 <= missing <= 1:
        raise ValueError(f"missing must be a share in [0, 1], got {missing!r}")

    def sample(rng: random.Random, progress: float, size: int) -> list[W.Example]:
        return [job_example(rng.choice(people), f"{rng.random()}", rng.random() >= missing) for _ in range(size)]

    return sample


def group_means(values: Sequence[float], groups: Sequence[bool]) -> dict[str, float]:
    """Mean of `values` inside ('in') and outside ('out') the group, and their difference 'gap' (0: no skew)."""
    if len(values) != len(groups):
        raise ValueError(f"got {len(values)} values but {len(groups)} group flags")
    means = {}
    for key, flag in (("in", True), ("out", False)):
        chosen = [v for v, g in zip(values, groups) if g == flag]
        if not chosen:
            raise ValueError(f"no one {key} the group: the gap needs people on both sides")
        means[key] = sum(chosen) / len(chosen)
    return {**means, "gap": means["in"] - means["out"]}


def rate_gap(jobs: Sequence[str], groups: Sequence[bool], job: str) -> dict[str, float]:
    """P(job | in group), P(job | out of group) and their difference 'gap' (0: no skew)."""
    return group_means([float(j == job) for j in jobs], groups)


def mean_rate_gap(probs: Sequence[dict[str, float]], groups: Sequence[bool], job: str) -> dict[str, float]:
    """rate_gap of the model's probabilities: mean P(job) inside and outside the group, and the difference."""
    return group_means([p[job] for p in probs], groups)


def job_distributions(model, tokenizer, prompts: Sequence[str], batch_size: int = 64) -> list[dict[str, float]]:
    """For each prompt, P(job) over the ten jobs: the softmax of log P(' ' + job | prompt) (the model's belief)."""
    flat_p = [p for p in prompts for _ in JOBS]
    scores = continuation_logprobs(model, tokenizer, flat_p, [f" {j}" for _ in prompts for j in JOBS], batch_size)
    out = []
    for i in range(len(prompts)):
        row = scores[i * len(JOBS): (i + 1) * len(JOBS)]
        top = max(row)
        weights = [math.exp(s - top) for s in row]
        out.append({j: w / sum(weights) for j, w in zip(JOBS, weights)})
    return out


def decisions(probs: Sequence[dict[str, float]]) -> list[str]:
    """The most probable job of each distribution (what greedy decoding among the ten jobs answers)."""
    return [max(p, key=p.get) for p in probs]


def flip_rate(before: Sequence[str], after: Sequence[str]) -> float:
    """Share of answers that change between two runs of the same questions (0: the swap changes nothing)."""
    if len(before) != len(after) or not before:
        raise ValueError(f"flip_rate needs two equally long, non-empty answer lists, "
                         f"got {len(before)} and {len(after)}")
    return sum(a != b for a, b in zip(before, after)) / len(before)
