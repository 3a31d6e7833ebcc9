"""Prompting helpers: prompt templates, a context window, batched answer scoring and normalised accuracy.

Used by notebooks 03 (prompting and the context window) and 04 (few-shot learning). Greedy answering itself
is `hubhelpers.evaluation.greedy_answers`; this module adds what a prompter varies around it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch

from .evaluation import batches, normalise
from .params import check_int

QUESTION_RE = re.compile(r"Q: (?P<question>.*?)\nA:\s*$", re.DOTALL)
ARTICLES = ("a", "an", "the")

# Statement stems the pretraining bios use ("Bolami lives in Arvel."): a cloze prompt ends where the value starts.
CLOZE_STEMS: dict[str, str] = {
    "city": "{n} lives in the town of",
    "job": "{n} works as",
    "pet": "{n} has a pet",
    "colour": "{n}'s favourite colour is",
    "month": "{n} was born in",
    "fruit": "{n}'s favourite fruit is the",
    "instrument": "{n} plays the",
}
# Llama 2's chat format (meta-llama/Llama-2-*-chat-hf), written out as text: [INST] ... [/INST] around each user turn,
# the system prompt inside <<SYS>> ... <</SYS>> in the first one. Shown beside the course model's own in notebook 03.
LLAMA2_CHAT_FORMAT = "<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"
# Text templates; {question} is the question, {name} and {relation} come from the example's meta.
TEMPLATES: dict[str, str] = {
    "qa": "Q: {question}\nA:",  # the format the base model was pretrained on
    "cloze": "{cloze}",  # a statement to complete, as in the bios
    "instruction": "Answer the question with one word.\nQuestion: {question}\nAnswer:",
    "question_answer": "Question: {question}\nAnswer:",  # the same layout in other words
    "bare": "{question}\n",  # the question alone
    "chat": "",  # the tokenizer's chat template around the question (see render_prompt)
}


def question_of(prompt: str) -> str:
    """The question inside a TinyWorld 'Q: ...\\nA:' prompt (with or without a 'Context: ...' line)."""
    match = QUESTION_RE.search(prompt)
    if not match:
        raise ValueError(f"no 'Q: <question>\\nA:' in prompt {prompt!r}")
    return match["question"].split("\n")[-1]


def chat_prompt_text(tokenizer, user: str) -> str:
    """`user` wrapped in the tokenizer's chat template, ready for the assistant's reply.

    The leading bos token that some templates write is dropped when the tokenizer adds one itself, so that
    tokenizing the result does not start with two bos tokens.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no chat template; pick another template")
    text = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                         add_generation_prompt=True)
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and tokenizer("x")["input_ids"][:1] == [tokenizer.bos_token_id]:
        text = text[len(bos):]
    return text


def render_prompt(template: str, example, tokenizer=None) -> str:
    """The prompt asking `example` (a TinyWorld Example with meta name/relation) in `template`'s wording."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; accepted: {', '.join(TEMPLATES)}")
    q = question_of(example.prompt)
    if template == "chat":
        if tokenizer is None:
            raise ValueError("the 'chat' template needs the tokenizer (its chat template renders the prompt)")
        return chat_prompt_text(tokenizer, q)
    name, relation = example.meta.get("name"), example.meta.get("relation")
    cloze = CLOZE_STEMS[relation].format(n=name) if template == "cloze" else ""
    return TEMPLATES[template].format(question=q, cloze=cloze, name=name, relation=relation)


# --------------------------------------------------------------------------- answers and accuracy
def normalise_answer(answer: str) -> str:
    """The first word of an answer, lower-cased, without punctuation or a leading article ('a baker.' -> 'baker')."""
    words = [re.sub(r"[^\w'-]", "", w) for w in normalise(answer).split()]
    words = [w for w in words if w]
    while len(words) > 1 and words[0] in ARTICLES:
        words = words[1:]
    return words[0] if words else ""


def accuracy(answers: Sequence[str], golds: Sequence[str]) -> float:
    """Fraction of answers equal to their gold after `normalise_answer` on both."""
    if len(answers) != len(golds):
        raise ValueError(f"got {len(answers)} answers but {len(golds)} gold answers")
    if not answers:
        raise ValueError("accuracy needs at least one answer, got none")
    return sum(normalise_answer(a) == normalise_answer(g) for a, g in zip(answers, golds)) / len(answers)


# --------------------------------------------------------------------------- the context window
def token_count(tokenizer, text: str) -> int:
    """Number of tokens of `text` as the model sees it (special tokens such as bos included)."""
    return len(tokenizer(text)["input_ids"])


def truncate_to_window(tokenizer, text: str, window: int) -> tuple[str, str]:
    """(kept, dropped): keep the last tokens of `text` so that the model sees at most `window` tokens.

    Like a deployment that keeps the most recent input, the start of the text is dropped; special tokens the
    tokenizer adds (bos) count towards the window.
    """
    check_int("window", window, low=2)  # tokens
    if token_count(tokenizer, text) <= window:
        return text, ""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    extra = token_count(tokenizer, "") if text else 0  # tokens the tokenizer adds (bos)
    keep = window - extra
    while keep > 0:
        kept = tokenizer.decode(ids[-keep:])
        if token_count(tokenizer, kept) <= window:  # re-encoding at the cut can merge differently
            return kept, text[: len(text) - len(kept)]
        keep -= 1
    return "", text


def fill_to_distance(tokenizer, fact: str, fillers: Sequence[str], distance: int, tail: str) -> str:
    """`fact`, then as many `fillers` as needed so that `fact` starts about `distance` tokens before the end.

    The text returned is `fact + " " + filler... + tail`; `tail` (e.g. the question) always comes last. The
    distance is counted from the first token of `fact` to the last token of the result.
    """
    check_int("distance", distance, low=0)  # tokens
    parts: list[str] = []
    pool = list(fillers)
    while True:
        text = " ".join([fact, *parts]) + tail
        if token_count(tokenizer, text) - token_count(tokenizer, "") >= distance:
            return text
        if not pool:
            raise ValueError(f"ran out of filler after {len(parts)} pieces before reaching distance {distance}")
        parts.append(pool.pop(0))


# --------------------------------------------------------------------------- batched scoring
def continuation_logprobs(model, tokenizer, prompts: Sequence[str], continuations: Sequence[str],
                          batch_size: int = 64) -> list[float]:
    """log P(continuation | prompt) for each pair, summed over the continuation's tokens (batched).

    Candidates are scored in one forward pass per batch: prompt and continuation are joined, right-padded, and
    only the continuation's tokens are summed.
    """
    if len(prompts) != len(continuations):
        raise ValueError(f"got {len(prompts)} prompts but {len(continuations)} continuations")
    if not prompts:
        raise ValueError("continuation_logprobs needs at least one prompt, got none")
    pairs = []
    for prompt, cont in zip(prompts, continuations):
        p = tokenizer(prompt)["input_ids"]
        c = tokenizer(cont, add_special_tokens=False)["input_ids"]
        if not c:
            raise ValueError(f"continuation {cont!r} has no tokens")
        pairs.append((p, c))
    return [float(dist[torch.arange(len(c)), torch.tensor(c)].sum())
            for (_, c), dist in zip(pairs, continuation_distributions(model, tokenizer, pairs, batch_size))]


def continuation_distributions(model, tokenizer, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int = 64):
    """For each (prompt ids, continuation ids): the log-softmax rows that predicted the continuation's tokens.

    Yields one (len(continuation), vocab) tensor per pair; pairs are joined, right-padded and run in batches.
    """
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for chunk in batches(list(pairs), batch_size):
        length = max(len(p) + len(c) for p, c in chunk)
        ids = torch.full((len(chunk), length), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (p, c) in enumerate(chunk):
            ids[row, : len(p) + len(c)] = torch.tensor(p + c)
            mask[row, : len(p) + len(c)] = 1
        with torch.inference_mode():
            logp = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits.float()
            logp = logp.log_softmax(-1).cpu()
        for row, (p, c) in enumerate(chunk):
            yield logp[row, len(p) - 1: len(p) + len(c) - 1]  # (len(c), vocab)


def choose_answers(model, tokenizer, prompts: Sequence[str], candidates: Sequence[Sequence[str]],
                   batch_size: int = 64) -> list[str]:
    """For each prompt, the candidate answer the model finds most likely (scored as ' ' + candidate)."""
    if len(prompts) != len(candidates):
        raise ValueError(f"got {len(prompts)} prompts but {len(candidates)} candidate lists")
    flat_p = [p for p, cands in zip(prompts, candidates) for _ in cands]
    flat_c = [" " + c for cands in candidates for c in cands]
    if any(not cands for cands in candidates):
        raise ValueError("every prompt needs at least one candidate answer")
    scores = continuation_logprobs(model, tokenizer, flat_p, flat_c, batch_size)
    out, i = [], 0
    for cands in candidates:
        best = max(range(len(cands)), key=lambda j: scores[i + j])
        out.append(cands[best])
        i += len(cands)
    return out


# --------------------------------------------------------------------------- coping with long input
SENTENCE_RE = re.compile(r"[^.!?\n]+[.!?]?")
CAPITALISED_RE = re.compile(r"\b[A-Z][a-z]+")


def keywords(text: str) -> set[str]:
    """Capitalised words of `text` (names, places) without a possessive 's: the cheapest retrieval key."""
    return set(CAPITALISED_RE.findall(text))


def retrieve_sentences(context: str, query: str) -> str:
    """The sentences of `context` that share a capitalised word (a name) with `query`, in their original order.

    A keyword retriever: enough for TinyWorld, where the question names the person; notebook 10 replaces it with
    embeddings. Returns an empty string when no sentence matches.
    """
    keys = keywords(query)
    sentences = [s.strip() for s in SENTENCE_RE.findall(context) if s.strip()]
    return " ".join(s for s in sentences if keywords(s) & keys)


# --------------------------------------------------------------------------- few-shot prompts
def few_shot_prompt(shots: Sequence[tuple[str, str]], query: str, arrow: str = "->") -> str:
    """'input arrow output' lines for each shot, then the query line left open: 'query arrow'."""
    if not isinstance(arrow, str) or not arrow.strip():
        raise ValueError(f"arrow must be a non-empty string such as '->' or '=>', got {arrow!r}")
    return "".join(f"{x} {arrow} {y}\n" for x, y in shots) + f"{query} {arrow}"


def random_code(rng, inputs: Sequence[str], outputs: Sequence[str]) -> dict[str, str]:
    """A fresh random one-to-one code from `inputs` to `outputs` (needs at least as many outputs as inputs)."""
    if len(outputs) < len(inputs):
        raise ValueError(f"need at least {len(inputs)} outputs for a one-to-one code, got {len(outputs)}")
    return dict(zip(inputs, rng.sample(list(outputs), len(inputs))))
