"""Fine-tuning helpers: instruction splits and scoring, chat rendering and masking, TRL SFT on a tiny model."""

import pytest

from hubhelpers import finetune as F
from hubhelpers import tasks
from hubhelpers import world as W
from hubhelpers.models import chat_tokenizer, has_generation_markers, load_model


def test_splits_never_test_a_trained_question(world):
    train, test = F.instruction_splits(world, 300, 80, seed=3)
    assert len(train) == 300 and len(test) == 80
    keys = {(ex["name"], ex["relation"], ex["instruction"]) for ex in train}
    test_keys = [(ex["name"], ex["relation"], ex["instruction"]) for ex in test]
    assert not keys & set(test_keys)
    assert len(set(test_keys)) == len(test_keys)
    assert {ex["instruction"] for ex in test} == set(tasks.INSTRUCTIONS)


def test_gold_answers_follow_their_instruction(world):
    for ex in tasks.instruction_examples(world, 200, seed=1):
        assert F.follows_instruction(ex, ex["messages"][-1]["content"]), ex


@pytest.mark.parametrize("kind, bad", [
    ("arrow", "{n}: {v}"), ("arrow", "{n} -> wrong"), ("name_first", "{v}"), ("name_first", "{n} -> {v}"),
    ("topic_first", "{n}: {v}"), ("sentence", "{n} {v}"), ("sentence", "Someone else has {v}."), ("sentence", ""),
])
def test_wrong_format_or_fact_fails(world, kind, bad):
    ex = next(e for e in tasks.instruction_examples(world, 100, seed=2) if e["instruction"] == kind)
    assert not F.follows_instruction(ex, bad.format(n=ex["name"], v=ex["value"]))


def test_unknown_instruction_is_named(world):
    ex = dict(tasks.instruction_examples(world, 1)[0], instruction="shout")
    with pytest.raises(ValueError, match="shout.*accepted"):
        F.follows_instruction(ex, "x")


def test_chat_rendering_and_assistant_mask(tiny, world):
    _, tok = tiny
    ex = tasks.instruction_examples(world, 1)[0]
    prompt = F.chat_prompt(tok, ex)
    assert prompt.endswith("<|assistant|>\n") and ex["messages"][-1]["content"] not in prompt
    table = F.assistant_token_mask(tok, ex)
    trained = "".join(t for t, m in table if m)
    assert trained == ex["messages"][-1]["content"] + F.END_OF_TURN
    assert "".join(t for t, _ in table).startswith(prompt)
    assert tok.convert_tokens_to_ids(F.END_OF_TURN) in F.stop_token_ids(tok)


def test_chat_dataset_has_messages_only(world):
    data = F.chat_dataset(tasks.instruction_examples(world, 5))
    assert data.column_names == ["messages"] and len(data) == 5
    with pytest.raises(ValueError, match="at least one"):
        F.chat_dataset([])


def test_sft_config_rejects_bad_values(tmp_path):
    with pytest.raises(ValueError, match="steps"):
        F.sft_config(tmp_path, steps=0)
    with pytest.raises(ValueError, match="lr"):
        F.sft_config(tmp_path, lr=2.0)
    cfg = F.sft_config(tmp_path, steps=5, assistant_only=False)
    assert cfg.max_steps == 5 and not cfg.assistant_only_loss and not cfg.bf16


def sft_twelve_steps(model, tok, train, tmp_path, assistant_only):
    """Twelve SFT steps on `train`; asserts that the loss fell and the weights moved; returns the trainer."""
    before = [p.detach().clone() for p in model.parameters()]
    cfg = F.sft_config(tmp_path, steps=12, lr=1e-2, batch_size=8, assistant_only=assistant_only,
                       logging_steps=1, disable_tqdm=True)
    trainer = F.sft_train(model, tok, train, cfg)
    steps, losses = F.logged_losses(trainer)
    assert steps[-1] == 12 and losses[-1] < losses[0]
    assert any(not (a == b).all() for a, b in zip(before, model.parameters()))
    return trainer


@pytest.mark.parametrize("assistant_only", [True, False])
def test_sft_trains_a_tiny_model(tiny_chat_model_dir, world, tmp_path, assistant_only):
    model, tok = load_model(str(tiny_chat_model_dir), device="cpu")
    train, test = F.instruction_splits(world, 64, 8)
    trainer = sft_twelve_steps(model, tok, train, tmp_path, assistant_only)
    row = trainer.train_dataset[0]  # TRL folds the assistant mask into the labels (-100 = not trained on)
    n_trained = sum(label != -100 for label in row["labels"])
    n_assistant = sum(m for _, m in F.assistant_token_mask(tok, {"messages": row["messages"]}))
    assert n_trained == (n_assistant if assistant_only else len(row["input_ids"]))
    acc, by_kind, responses = F.instruction_accuracy(model, tok, test, max_new_tokens=4)
    assert 0 <= acc <= 1 and len(responses) == len(test) and set(by_kind) <= set(tasks.INSTRUCTIONS)


def test_sft_train_leaves_a_model_that_deep_copies_cleanly(tiny_chat_model_dir, tmp_path):
    import copy

    import torch

    from hubhelpers import finetune as F
    from hubhelpers import tasks
    from hubhelpers.models import load_model

    model, tok = load_model(str(tiny_chat_model_dir), device="cpu")
    examples = tasks.instruction_examples(W.make_world(W.WorldConfig(n_train=12, n_heldout=6)), 8)
    F.sft_train(model, tok, examples, F.sft_config(tmp_path / "sft", steps=2, batch_size=4))
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    ids = tok("Where does Ada live?", return_tensors="pt")
    assert not torch.allclose(twin(**ids).logits, model(**ids).logits)  # the copy runs its own weights


def test_accuracy_callback_scores_the_model_at_the_given_steps(tiny_chat_model_dir, world, tmp_path):
    model, tok = load_model(str(tiny_chat_model_dir), device="cpu")
    train, test = F.instruction_splits(world, 32, 6)
    curve = F.accuracy_callback(tok, test, [2, 4, 4])
    F.sft_train(model, tok, train, F.sft_config(tmp_path, steps=4, batch_size=8, disable_tqdm=True), callbacks=[curve])
    assert list(curve.curve) == [2, 4] and all(0 <= a <= 1 for a in curve.curve.values())
    assert model.training is False  # scoring mid-run left the model as the trainer's end leaves it
    assert F.accuracy_callback(tok, test, [1]).curve == {}  # a fresh callback starts empty


@pytest.mark.parametrize("steps, examples, match", [([], 1, "at_steps"), ([0], 1, "at_steps"), (["3"], 1, "at_steps"),
                                                    ([1], 0, "at least one example")])
def test_accuracy_callback_rejects_bad_input(tiny, world, steps, examples, match):
    _, tok = tiny
    with pytest.raises(ValueError, match=match):
        F.accuracy_callback(tok, tasks.instruction_examples(world, 2)[:examples], steps)


def test_checkpointing_rename_notices_are_hidden_and_nothing_else(tmp_path):
    import warnings

    from hubhelpers import dpo, reward

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        configs = [F.sft_config(tmp_path), reward.reward_config(tmp_path), dpo.dpo_config(tmp_path)]
        with F.checkpointing_renames_hidden():
            warnings.warn("`gradient_checkpointing_enable` is deprecated", FutureWarning, stacklevel=1)
            warnings.warn("another future change", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["another future change"]
    # TRL turns activation checkpointing on for reward models and DPO: on the course's small models it only
    # recomputes every forward pass (most of a reward-model step's time); its memory saving is for large models
    assert [c.activation_checkpointing for c in configs] == [False, False, False]


@pytest.mark.parametrize("assistant_only", [True, False])
def test_sft_on_a_base_model_without_a_chat_template(tiny_gpt2_dir, world, tmp_path, assistant_only):
    """No template: the plain User:/Assistant: one, and TRL's prompt-completion format masks the prompt."""
    model, tok = load_model(str(tiny_gpt2_dir), device="cpu")
    tok = chat_tokenizer(tok)
    assert not has_generation_markers(tok)
    train = F.instruction_splits(world, 64, 8)[0]
    reply = train[0]["messages"][-1]["content"]
    table = F.assistant_token_mask(tok, train[0])
    assert "".join(t for t, m in table if m).strip() == reply + tok.eos_token  # the reply and its eos
    trainer = sft_twelve_steps(model, tok, train, tmp_path, assistant_only)
    row = trainer.train_dataset[0]  # TRL folds the completion mask into the labels (-100 = not trained on)
    n_trained = sum(label != -100 for label in row["labels"])
    assert 0 < n_trained <= len(row["input_ids"])
    assert (n_trained < len(row["input_ids"])) == assistant_only
    assert trainer.args.completion_only_loss is assistant_only and not trainer.args.assistant_only_loss


def test_follows_form_needs_the_asked_form_and_the_fact(world):
    ex = tasks.form_examples(world, 1, ("topic -> answer",))[0]
    topic = tasks.TOPIC_WORDS[ex["relation"]]
    assert F.follows_form(ex, ex["messages"][1]["content"]) and F.follows_form(ex, f" {topic} -> {ex['value']}.")
    for bad in (f"{ex['name']} -> {ex['value']}", f"{topic}: {ex['value']}", f"{topic} -> wrong", ex["value"]):
        assert not F.follows_form(ex, bad), bad


def test_form_accuracy_scores_per_form(tiny, world):
    model, tok = tiny
    examples = tasks.form_examples(world, 6, ("answer | name", "topic = answer"))
    acc, by_form, responses = F.form_accuracy(model, tok, examples, max_new_tokens=4)
    hits = [F.follows_form(ex, r) for ex, r in zip(examples, responses)]
    assert acc == sum(hits) / len(hits) and len(responses) == len(examples)
    assert set(by_form) == {ex["instruction"] for ex in examples} and all(0 <= v <= 1 for v in by_form.values())
    with pytest.raises(ValueError, match="at least one"):
        F.form_accuracy(model, tok, [])
