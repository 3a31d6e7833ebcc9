"""Fine-tuning helpers for notebooks 05-06 and the SFT script: chat data, TRL's SFTTrainer, instruction scoring.

The instruction data come from ``hubhelpers.tasks.instruction_examples``: a user asks a question about a TinyWorld
person with a *checkable* instruction (``tasks.INSTRUCTIONS``: an arrow form, a full sentence, the name first, the topic
first); the assistant turn is the gold answer. ``follows_instruction`` checks a response against both the instruction
and the fact; ``follows_form`` does the same for the answer formats of ``tasks.FORMS``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from hubhelpers import tasks
from hubhelpers import world as W
from hubhelpers.evaluation import batches, normalise
from hubhelpers.models import has_generation_markers
from hubhelpers.params import Float, Int, ListOf, check_int

END_OF_TURN = "<|end|>"


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------

def _key(example: dict) -> tuple[str, str, str]:
    """What makes two instruction examples 'the same question': person, relation and instruction."""
    return example["name"], example["relation"], example["instruction"]


def instruction_splits(world: W.World, n_train: int, n_test: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Training and test instruction examples; no (person, relation, instruction) of the test set is trained on."""
    train = tasks.instruction_examples(world, n_train, seed=seed)
    seen = {_key(ex) for ex in train}
    test, seen_test, draw = [], set(), 0
    while len(test) < n_test:
        draw += 1
        if draw > 50:
            raise ValueError(f"cannot find {n_test} test instructions unseen in {n_train} training ones; "
                             "lower n_train or n_test")
        for ex in tasks.instruction_examples(world, 4 * n_test, seed=seed + 1000 * draw):
            if _key(ex) not in seen and _key(ex) not in seen_test and len(test) < n_test:
                test.append(ex)
                seen_test.add(_key(ex))
    return train, test


def chat_dataset(examples: Sequence[dict], assistant: bool = True, prompt_completion: bool = False):
    """A ``datasets.Dataset`` in one of TRL's conversational formats.

    'messages' (the whole conversation) by default; with `prompt_completion`, 'prompt' (the turns before the
    assistant's) and 'completion' (the assistant's turn), for which TRL computes the loss on the completion only,
    with any chat template (no {% generation %} markers needed).
    """
    if not examples:
        raise ValueError("chat_dataset needs at least one example, got none")
    if prompt_completion:
        return Dataset.from_dict({"prompt": [[m for m in ex["messages"] if m["role"] != "assistant"]
                                             for ex in examples],
                                  "completion": [[m for m in ex["messages"] if m["role"] == "assistant"]
                                                 for ex in examples]})
    rows = [ex["messages"] if assistant else [m for m in ex["messages"] if m["role"] != "assistant"]
            for ex in examples]
    return Dataset.from_dict({"messages": rows})


def chat_prompt(tokenizer, example: dict) -> str:
    """The example's conversation up to (and including) the assistant header: what the model continues."""
    messages = [m for m in example["messages"] if m["role"] != "assistant"]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def assistant_token_mask(tokenizer, example: dict) -> list[tuple[str, bool]]:
    """(token, is trained on) for every token of the rendered conversation with assistant-only loss.

    With {% generation %} markers the template says which tokens are the assistant's; without them the rendered
    prompt (add_generation_prompt=True) is masked and the rest is trained on, as TRL's prompt-completion format does.
    """
    if has_generation_markers(tokenizer):
        out = tokenizer.apply_chat_template(example["messages"], tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        return [(tokenizer.decode([i]), bool(m)) for i, m in zip(out["input_ids"], out["assistant_masks"])]
    ids = tokenizer.apply_chat_template(example["messages"], tokenize=True, return_dict=True)["input_ids"]
    n_prompt = len(tokenizer(chat_prompt(tokenizer, example), add_special_tokens=False)["input_ids"])
    return [(tokenizer.decode([i]), k >= n_prompt) for k, i in enumerate(ids)]


# ---------------------------------------------------------------------------------------------------------
# Generation and scoring
# ---------------------------------------------------------------------------------------------------------

def stop_token_ids(tokenizer) -> list[int]:
    """Token ids that end an assistant turn: the chat template's end-of-turn marker (when known) and eos."""
    ids = [tokenizer.eos_token_id]
    end = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if isinstance(end, int) and end != tokenizer.unk_token_id and end not in ids:
        ids.insert(0, end)
    return [i for i in ids if i is not None]


def chat_responses(model, tokenizer, examples: Sequence[dict], max_new_tokens: int = 16,
                   batch_size: int = 64) -> list[str]:
    """Greedy assistant replies to each example's user turn (batched, left-padded, first line only)."""
    if not examples:
        raise ValueError("chat_responses needs at least one example, got none")
    prompts = [chat_prompt(tokenizer, ex) for ex in examples]
    out: list[str] = []
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    was_training = model.training
    model.eval()
    try:
        for chunk in batches(prompts, batch_size):
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            with torch.inference_mode():
                gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_token_ids(tokenizer))
            texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            out.extend(t.strip().split("\n")[0].strip() for t in texts)
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out


def follows_instruction(example: dict, response: str) -> bool:
    """True when `response` obeys the example's instruction and states the right fact (example['value']).

    sentence: ends with '.', at least 3 words, starts with the person's name and contains the value;
    arrow: '<name> -> <value>'; name_first: '<name>: <value>'; topic_first: '<topic word>: <value>' (the topic
    words are tasks.TOPIC_WORDS).
    """
    kind = example["instruction"]
    if kind not in tasks.INSTRUCTIONS:
        raise ValueError(f"unknown instruction {kind!r}; accepted: {', '.join(sorted(tasks.INSTRUCTIONS))}")
    value, text = example["value"], response.strip()
    words = [w.lower() for w in re.findall(r"[A-Za-z']+", text)]
    if kind == "arrow":
        return normalise(text) == f"{example['name']} -> {value}".lower()
    if kind == "sentence":
        return (text.endswith(".") and len(words) >= 3 and re.match(rf"{example['name']}\b", text) is not None
                and value.lower() in words)
    head = example["name"] if kind == "name_first" else tasks.TOPIC_WORDS[example["relation"]]
    return normalise(text) == f"{head}: {value}".lower()


def graded_accuracy(model, tokenizer, examples: Sequence[dict], follows: Callable[[dict, str], bool],
                    max_new_tokens: int = 16, batch_size: int = 64) -> tuple[float, dict[str, float], list[str]]:
    """(overall accuracy, accuracy per example["instruction"], responses) of greedy replies judged by `follows`."""
    responses = chat_responses(model, tokenizer, examples, max_new_tokens, batch_size)
    hits = [follows(ex, r) for ex, r in zip(examples, responses)]
    per_kind: dict[str, list[bool]] = {}
    for ex, hit in zip(examples, hits):
        per_kind.setdefault(ex["instruction"], []).append(hit)
    by_kind = {k: sum(v) / len(v) for k, v in sorted(per_kind.items())}
    return sum(hits) / len(hits), by_kind, responses


def instruction_accuracy(model, tokenizer, examples: Sequence[dict], max_new_tokens: int = 16,
                         batch_size: int = 64) -> tuple[float, dict[str, float], list[str]]:
    """(overall accuracy, accuracy per instruction kind, responses) of greedy replies on `examples`."""
    return graded_accuracy(model, tokenizer, examples, follows_instruction, max_new_tokens, batch_size)


def follows_form(example: dict, response: str) -> bool:
    """True when `response` is the reply its tasks.form_examples instruction asks for (form and fact)."""
    gold = tasks.form_reply(example["instruction"], example["name"], example["relation"], example["value"])
    return normalise(response) == normalise(gold)


def form_accuracy(model, tokenizer, examples: Sequence[dict], max_new_tokens: int = 16,
                  batch_size: int = 64) -> tuple[float, dict[str, float], list[str]]:
    """(overall accuracy, accuracy per form, responses) of greedy replies to tasks.form_examples."""
    return graded_accuracy(model, tokenizer, examples, follows_form, max_new_tokens, batch_size)


# ---------------------------------------------------------------------------------------------------------
# Supervised fine-tuning with TRL
# ---------------------------------------------------------------------------------------------------------

def trainer_settings(output_dir: str | Path, steps: int, lr: float, batch_size: int, seed: int = 0) -> dict:
    """TrainingArguments for the course's small TRL runs: fp32, cosine, no saving, no external loggers."""
    check_int("steps", steps)
    check_int("batch_size", batch_size)
    Float(0, 1).check("lr", lr, {})
    return {"output_dir": str(output_dir), "max_steps": steps, "learning_rate": lr,
            "per_device_train_batch_size": batch_size, "lr_scheduler_type": "cosine", "warmup_steps": steps // 10,
            "weight_decay": 0.0, "logging_steps": max(1, steps // 20), "save_strategy": "no", "report_to": "none",
            "bf16": False, "fp16": False, "seed": seed, "data_seed": seed, "disable_tqdm": False,
            "dataloader_num_workers": 0, "dataloader_pin_memory": False}


def sft_config(output_dir: str | Path, steps: int = 200, lr: float = 1e-3, batch_size: int = 16,
               assistant_only: bool = True, seed: int = 0, **overrides):
    """An ``SFTConfig`` for small CPU runs: fp32, no checkpointing, no saving, no external loggers."""
    return trl_config(SFTConfig, trainer_settings(output_dir, steps, lr, batch_size, seed),
                      {"assistant_only_loss": assistant_only, "max_length": 256, "activation_checkpointing": False},
                      overrides)


def trl_config(config_class, settings: dict, lesson: dict, overrides: dict):
    """A TRL config from trainer_settings, the lesson's own settings and the caller's overrides (later ones win)."""
    with checkpointing_renames_hidden():
        return config_class(**{**settings, **lesson, **overrides})


def release(model):
    """Undo a trainer's patch of `model.forward` (bound to this object), so deep copies run their own weights."""
    model.__dict__.pop("forward", None)
    model.__dict__.pop("_original_forward", None)
    return model


@contextlib.contextmanager
def checkpointing_renames_hidden():
    """Hide transformers' notices that `gradient_checkpointing*` is now `activation_checkpointing*`, and only those.

    TRL's configs and trainers still use the old names (TRL's own code, not the learner's): the notice teaches
    nothing in a lesson's output. Every other warning shows as usual.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`(is_)?gradient_checkpointing\w*` is deprecated",
                                category=FutureWarning)
        yield


def run_trainer(trainer_class, model, tokenizer, dataset, config, callbacks: Sequence = ()):
    """Train `model` in place with a TRL trainer class on `dataset`; returns the trainer (its log in .state)."""
    with checkpointing_renames_hidden():
        trainer = trainer_class(model=model, args=config, train_dataset=dataset, processing_class=tokenizer,
                                callbacks=list(callbacks) or None)
        trainer.train()
    release(model).eval()  # a later copy.deepcopy(model) must run the copy's weights, not these
    return trainer


def sft_train(model, tokenizer, examples: Sequence[dict], config, callbacks: Sequence = ()):
    """Fine-tune `model` in place with TRL's SFTTrainer on chat `examples`; returns the trainer (log in .state).

    A chat template with {% generation %} markers trains on whole conversations with `assistant_only_loss`; any
    other template gets the prompt-completion format, whose `completion_only_loss` masks the same tokens.
    """
    if has_generation_markers(tokenizer):
        return run_trainer(SFTTrainer, model, tokenizer, chat_dataset(examples), config, callbacks)
    with checkpointing_renames_hidden():
        config = dataclasses.replace(config, assistant_only_loss=False, completion_only_loss=config.assistant_only_loss)
    return run_trainer(SFTTrainer, model, tokenizer, chat_dataset(examples, prompt_completion=True), config, callbacks)


def accuracy_callback(tokenizer, examples: Sequence[dict], at_steps: Sequence[int]):
    """A TrainerCallback scoring instruction accuracy on `examples` at `at_steps`; results in its `.curve`."""
    ListOf(Int(1)).check("at_steps", list(at_steps), {})
    steps = sorted(set(at_steps))
    if not examples:
        raise ValueError("accuracy_callback needs at least one example, got none")

    class AccuracyCurve(TrainerCallback):
        def __init__(self):
            self.curve: dict[int, float] = {}  # step -> accuracy

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in steps:
                self.curve[state.global_step] = instruction_accuracy(model, tokenizer, examples)[0]

    return AccuracyCurve()


def logged_losses(trainer) -> tuple[list[int], list[float]]:
    """(steps, training losses) the trainer logged."""
    rows = [r for r in trainer.state.log_history if "loss" in r]
    return [r["step"] for r in rows], [r["loss"] for r in rows]


# ---------------------------------------------------------------------------------------------------------
# The new-relation task of notebooks 05 and 07
# ---------------------------------------------------------------------------------------------------------

def new_relation_task(world: W.World, relation: str = "instrument", seed: int = 0) -> tuple[list, list]:
    """(training, evaluation) closed-book questions about a relation the base model never saw.

    Every training person is asked twice (two paraphrases drawn at random); evaluation asks each once more.
    """
    if relation not in W.RESERVED_RELATIONS:
        raise ValueError(f"relation must be one the base model never saw, one of {W.RESERVED_RELATIONS}; "
                         f"got {relation!r}")
    train = tasks.closed_book_questions(world, "train", 2 * len(world.train), seed=seed, relations=(relation,))
    evaluation = tasks.closed_book_questions(world, "train", len(world.train), seed=seed + 1, relations=(relation,))
    return train, evaluation
