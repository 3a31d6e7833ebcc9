"""The encoder-decoder lesson's helpers: ROUGE (evaluation.rouge_scores) and loading a seq2seq model (models)."""

from fractions import Fraction

import pytest
import torch

from hubhelpers import models as M
from hubhelpers.evaluation import ROUGE_TYPES, rouge_scores

CAT = ("the cat sat on the mat", "the cat is on the mat")
# Worked by hand. Unigrams, clipped counts: the x2, cat, on, mat are shared: 5 of 6 on each side, so P = R = F = 5/6.
# Bigrams: prediction (the cat)(cat sat)(sat on)(on the)(the mat), reference (the cat)(cat is)(is on)(on the)(the mat):
# 3 of 5 shared, so F = 3/5. Longest common subsequence: "the cat on the mat", 5 of 6 tokens each side, so F = 5/6.
CAT_SCORES = {"rouge1": Fraction(5, 6), "rouge2": Fraction(3, 5), "rougeL": Fraction(5, 6)}


def test_rouge_of_a_pair_worked_by_hand():
    scores = rouge_scores([CAT[0]], [CAT[1]])
    assert set(scores) == set(ROUGE_TYPES) == {"rouge1", "rouge2", "rougeL"}
    for name, expected in CAT_SCORES.items():
        assert scores[name] == pytest.approx(float(expected))


def test_rouge_identical_disjoint_and_the_mean_over_pairs():
    same = "#Person2# tells #Person1# that Bolami lives in Arvel."
    assert rouge_scores([same], [same]) == pytest.approx(dict.fromkeys(ROUGE_TYPES, 1.0))
    assert rouge_scores(["red owl sings"], ["blue cat sleeps"]) == pytest.approx(dict.fromkeys(ROUGE_TYPES, 0.0))
    both = rouge_scores([CAT[0], same], [CAT[1], same])
    assert both == pytest.approx({name: float((value + 1) / 2) for name, value in CAT_SCORES.items()})


def test_rouge_stems_and_ignores_case_and_punctuation():
    assert rouge_scores(["Bolami LIVES in Arvel!"], ["bolami lived in arvel"])["rouge1"] == pytest.approx(1.0)


@pytest.mark.parametrize("predictions, references, match", [
    (["a"], ["a", "b"], "got 1 predictions and 2 references"),
    ([], [], "got 0 predictions and 0 references"),
])
def test_rouge_refuses_unequal_or_empty_lists(predictions, references, match):
    with pytest.raises(ValueError, match=match):
        rouge_scores(predictions, references)


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    """A tiny random T5ForConditionalGeneration with the course's tokenizer, saved as a local model directory."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok = M.load_tokenizer("tinyworld")
    config = T5Config(vocab_size=len(tok), d_model=32, d_ff=64, d_kv=16, num_layers=1, num_decoder_layers=1,
                      num_heads=2, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      decoder_start_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("t5-tiny")
    T5ForConditionalGeneration(config).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def test_load_model_seq2seq_from_a_local_dir(t5_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = M.load_model(str(t5_dir), task="seq2seq-lm", device="cpu")
    assert type(model).__name__ == "T5ForConditionalGeneration" and model.config.is_encoder_decoder
    assert not model.training
    enc = tok(["#Person1#: Where does Bolami live?\n#Person2#: In Arvel."], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.dtype == torch.long and out.shape[0] == 1 and 1 < out.shape[1] <= 6
    assert out[0, 0].item() == tok.pad_token_id  # the decoder starts from decoder_start_token_id
    assert isinstance(tok.decode(out[0], skip_special_tokens=True), str)


def test_unknown_task_names_seq2seq_among_the_accepted(t5_dir):
    with pytest.raises(ValueError, match=r"unknown task 'translation'; accepted: .*seq2seq-lm"):
        M.load_model(str(t5_dir), task="translation", device="cpu")


# --------------------------------------------------------------------------- hubhelpers.seq2seq
@pytest.fixture(scope="module")
def t5_tok():
    from hubhelpers import seq2seq as S

    return S.add_sentinels(M.load_tokenizer("tinyworld"), n=8)


def test_sentinels_are_added_in_order_and_skipped_when_decoding(t5_tok):
    from hubhelpers import seq2seq as S

    ids = S.sentinel_ids(t5_tok)
    assert len(ids) == 8 and ids == sorted(ids) and min(ids) >= len(M.load_tokenizer("tinyworld"))
    text = "Bolami lives in <extra_id_0> Arvel."
    assert t5_tok(text, add_special_tokens=False)["input_ids"].count(ids[0]) == 1
    assert "<extra_id_0>" not in t5_tok.decode(t5_tok(text, add_special_tokens=False)["input_ids"],
                                               skip_special_tokens=True)
    with pytest.raises(ValueError, match="has no sentinel tokens"):
        S.sentinel_ids(M.load_tokenizer("tinyworld"))


@pytest.mark.parametrize("n, density, span", [(40, 0.15, 3.0), (7, 0.5, 1.0), (2, 0.15, 3.0), (200, 0.3, 5.0)])
def test_span_corruption_hides_spans_that_the_target_restores(n, density, span):
    import random

    from hubhelpers import seq2seq as S

    ids, sentinels = list(range(100, 100 + n)), [-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14]
    source, target = S.span_corruption(ids, sentinels, random.Random(n), density, span)
    used = [s for s in source if s < 0]
    assert used == sentinels[: len(used)] and used == [t for t in target if t < 0]  # one sentinel per span, in order
    assert target[0] == sentinels[0]
    hidden, current = {s: [] for s in used}, None
    for tok in target:
        current = tok if tok < 0 else current
        if tok >= 0:
            hidden[current].append(tok)
    assert all(hidden.values())  # no empty span
    restored = [t for s in source for t in (hidden[s] if s < 0 else [s])]
    assert restored == ids  # putting every span back gives the original sequence
    n_hidden = sum(len(v) for v in hidden.values())
    assert n_hidden == min(max(1, round(n * density)), n - 1)


@pytest.mark.parametrize("seed", range(5))
def test_whole_word_span_corruption_never_cuts_a_word(seed):
    import random

    from hubhelpers import seq2seq as S

    # words of 1-3 tokens: a word starts at each True
    lengths = random.Random(seed).choices([1, 2, 3], k=30)
    starts = [i == 0 for n in lengths for i in range(n)]
    ids, sentinels = list(range(100, 100 + len(starts))), [-i for i in range(1, 15)]
    source, target = S.span_corruption(ids, sentinels, random.Random(seed), 0.3, 2.0, starts)
    hidden, current = {}, None
    for tok in target:
        current = tok if tok < 0 else current
        if tok >= 0:
            hidden.setdefault(current, []).append(tok)
    assert [t for s in source for t in (hidden[s] if s < 0 else [s])] == ids  # every span back: the original
    for span in hidden.values():  # each span starts at a word start and ends where the next word starts
        first, last = ids.index(span[0]), ids.index(span[-1])
        assert starts[first] and (last + 1 == len(ids) or starts[last + 1])
    assert len(hidden) >= 2
    with pytest.raises(ValueError, match="2 flags for 3 tokens"):
        S.span_corruption([5, 6, 7], [-1], random.Random(0), word_starts=[True, False])


def test_salient_corruption_hides_exactly_the_flagged_words():
    from hubhelpers import seq2seq as S

    ids, starts = [1, 2, 3, 4, 5, 6, 7], [True, False, True, True, True, False, True]  # words: 12 3 4 56 7
    source, target = S.salient_corruption(ids, [-1, -2, -3], starts, [False, True, True, False, True])
    assert (source, target) == ([1, 2, -1, 5, 6, -2], [-1, 3, 4, -2, 7])  # two runs of flagged words, two spans
    assert S.salient_corruption(ids, [-1, -2], starts, [True, False, False, True, False]) == \
        ([-1, 3, 4, -2, 7], [-1, 1, 2, -2, 5, 6])
    assert S.salient_corruption(ids, [-1], starts, [False, True, True, False, False]) == ([1, 2, -1, 5, 6, 7],
                                                                                         [-1, 3, 4])
    with pytest.raises(ValueError, match="no salient word"):
        S.salient_corruption(ids, [-1], starts, [False] * 5)
    with pytest.raises(ValueError, match="4 flags for 5 words"):
        S.salient_corruption(ids, [-1], starts, [True] * 4)
    with pytest.raises(ValueError, match="only 1 sentinels"):
        S.salient_corruption(ids, [-1], starts, [True, False, True, False, False])


def test_fact_flags_mark_the_world_values_of_a_bio(t5_tok, world):
    import random

    from hubhelpers import pretrain_t5 as P
    from hubhelpers import seq2seq as S
    from hubhelpers import world as W

    person = world.train[0]
    ids = t5_tok(W.bio(person, random.Random(0)), add_special_tokens=False)["input_ids"]
    starts = S.word_start_flags(t5_tok, ids)
    flagged = [t5_tok.decode(u).strip() for u, f in zip(S.words(ids, starts), P.fact_flags(t5_tok, ids, starts)) if f]
    assert sorted(flagged) == sorted(person[r] for r in W.PRETRAIN_RELATIONS)


def test_word_starts_keep_a_name_whole_and_split_off_punctuation(t5_tok):
    from hubhelpers import seq2seq as S

    ids = t5_tok("Deroki lives in Arvel.", add_special_tokens=False)["input_ids"]
    units = S.words(ids, S.word_start_flags(t5_tok, ids))
    assert [t5_tok.decode(u) for u in units] == ["Deroki", " lives", " in", " Arvel", "."]


def test_span_corruption_refuses_bad_input():
    import random

    from hubhelpers import seq2seq as S

    with pytest.raises(ValueError, match="at least 2 tokens, got 1"):
        S.span_corruption([5], [-1], random.Random(0))
    with pytest.raises(ValueError, match=r"noise_density must lie in \(0, 1\), got 1.5"):
        S.span_corruption([5, 6, 7], [-1], random.Random(0), noise_density=1.5)
    with pytest.raises(ValueError, match="cannot split 3 into 4 positive parts"):
        S.random_partition(3, 4, random.Random(0))


def test_encode_pairs_closes_both_sides_with_eos_and_masks_padding(t5_tok):
    from hubhelpers import seq2seq as S

    batch = S.encode_pairs(t5_tok, ["#Person1#: Hi.", "#Person1#: Where does Bolami live?"], ["Hi.", "A b c d e f"])
    eos, pad = t5_tok.eos_token_id, t5_tok.pad_token_id
    assert t5_tok.bos_token_id not in batch["input_ids"].tolist()[0]
    for row, mask in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist()):
        assert row[sum(mask) - 1] == eos and all(t == pad for t in row[sum(mask):])
    labels = batch["labels"].tolist()
    assert labels[0][len(t5_tok("Hi.", add_special_tokens=False)["input_ids"])] == eos
    assert labels[0][-1] == -100 and labels[1][-1] == eos
    with pytest.raises(ValueError, match="got 2 sources but 1 targets"):
        S.encode_pairs(t5_tok, ["a", "b"], ["c"])


def test_seq2seq_loss_equals_the_library_loss_when_targets_have_one_length(t5_tok):
    from hubhelpers import seq2seq as S

    torch.manual_seed(0)
    model = S.build_t5(S.Seq2SeqShape(d_model=32, d_ff=64, d_kv=16, num_heads=2, num_layers=1,
                                      num_decoder_layers=1), t5_tok)
    batch = S.encode_pairs(t5_tok, ["Bolami lives in Arvel.", "Tell me about Vase."], ["Arvel.", "Vase."])
    assert (batch["labels"] != -100).all()  # same target length: the per-example mean is the token mean
    assert S.seq2seq_loss(model, batch).item() == pytest.approx(model(**batch).loss.item(), rel=1e-5)


def test_a_tiny_t5_learns_to_copy_and_generates_it(t5_tok):
    import random

    from hubhelpers import seq2seq as S
    from hubhelpers.training import TrainConfig, train

    torch.manual_seed(0)
    model = S.build_t5(S.Seq2SeqShape(d_model=64, d_ff=128, d_kv=16, num_heads=4, num_layers=1,
                                      num_decoder_layers=1), t5_tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    words = ["Arvel", "Bolami", "baker", "owl", "March", "green"]

    def sample(rng: random.Random, progress: float, size: int) -> dict:
        picks = [rng.choice(words) for _ in range(size)]
        return S.encode_pairs(t5_tok, [f"Say {w}." for w in picks], list(picks))

    cfg = TrainConfig(steps=120, batch_size=16, lr=1e-2, warmup_steps=10, eval_every=1000, checkpoint_every=1000)
    result = train(model, t5_tok, sample, cfg, loss_fn=S.seq2seq_loss, progress=False)
    assert result.losses[-1] < 0.1 * result.losses[0]
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert S.generate(model, t5_tok, [f"Say {w}." for w in words], max_new_tokens=6) == words


@pytest.mark.parametrize("target", ["passage", "spans"])
def test_pretrain_t5_tiny_run_writes_a_loadable_model_dir_with_its_card(tmp_path, target):
    import dataclasses
    import json

    from hubhelpers import pretrain_t5 as P
    from hubhelpers import seq2seq as S
    from hubhelpers.pretrain import write_model_dir
    from hubhelpers.training import TrainConfig

    cfg = dataclasses.replace(P.T5PretrainConfig(), n_dialogues=20, target=target,
                              shape=S.Seq2SeqShape(d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=1,
                                                   num_decoder_layers=1),
                              train=TrainConfig(steps=30, batch_size=8, lr=5e-3, warmup_steps=2, eval_every=1000,
                                                checkpoint_every=1000, max_len=64))
    model, tok, world, result = P.pretrain_t5(cfg, progress=False)
    assert len(result.history) == 30 and result.history[-1]["step"] == 30
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    figures = P.capability_figures(model, tok, world, n=4, target=target)
    assert set(figures) == set(P.GATES) and all(0 <= v <= 1 for v in figures.values())
    assert P.failed_gates(figures)  # 30 tiny steps pass no gate: the gates can fail
    card = P.make_card(cfg, model, result, figures)
    write_model_dir(model, tok, tmp_path / "t5", card, P.render_card)
    assert json.loads((tmp_path / "t5" / "card.json").read_text())["objective"]["target"] == target
    assert "span corruption" in (tmp_path / "t5" / "README.md").read_text()
    loaded, loaded_tok = M.load_model(str(tmp_path / "t5"), task="seq2seq-lm", device="cpu")
    assert S.sentinel_ids(loaded_tok) == S.sentinel_ids(tok)
    assert count_equal(loaded, model)


def test_pretrain_t5_refuses_an_unknown_target():
    from hubhelpers import pretrain_t5 as P

    with pytest.raises(ValueError, match="'passage', 'spans'.*'words'"):
        P.T5PretrainConfig(target="words")


def test_a_probe_counts_a_fill_in_either_target_format():
    from hubhelpers.pretrain_t5 import probe

    text = "Arvel lives in Oslo. Arvel works as a baker."
    p = probe(text, text.index("Arvel", 10), "Arvel")
    assert p.source == "Arvel lives in Oslo.<extra_id_0> works as a baker."
    assert p.filled_by("Arvel", "spans") and not p.filled_by("Arvelo", "spans")
    assert p.filled_by(text, "passage") and p.filled_by("Arvel lives in Oslo. Arvel", "passage")
    assert not p.filled_by("Arvel lives in Oslo. Arveloki works as a baker.", "passage")
    assert not p.filled_by("Arvel lives in Oslo. Bolami works as a baker.", "passage")


def count_equal(a, b) -> bool:
    """True when two models hold the same tensors."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_shipped_t5_alias_says_how_to_rebuild_it_when_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(M, "shipped_t5_dir", lambda: tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="make base-model-t5"):
        M.resolve_model("tinyworld-t5")
    assert M.is_shipped("tinyworld-t5") and not M.is_shipped("google/flan-t5-small")


def test_the_shipped_t5_is_small_reproduces_its_card_and_passes_its_gates():
    import json

    from hubhelpers import mixture
    from hubhelpers import pretrain_t5 as P
    from hubhelpers import world as W
    from hubhelpers.models import load_model

    directory = M.shipped_t5_dir()
    files = list(directory.iterdir())
    assert sum(f.stat().st_size for f in files) <= 20 * 2**20
    assert not [f for f in files if f.suffix in (".bin", ".pt", ".pth", ".pkl")]
    card = json.loads((directory / "card.json").read_text())
    assert card["command"] == P.BASE_T5_COMMAND and card["steps"] == P.T5PretrainConfig().train.steps
    assert card["world_fingerprint"] == mixture.fingerprint(W.WorldConfig(**card["world"]))
    assert (directory / "README.md").read_text() == P.render_card(card)
    model, tok = load_model("tinyworld-t5", device="cpu", task="seq2seq-lm")
    figures = P.capability_figures(model, tok, W.make_world(W.WorldConfig(**card["world"])),
                                   target=card["objective"]["target"])
    assert figures == card["figures"], "the card's figures must be the ones the checkpoint reproduces"
    assert P.failed_gates(figures) == []


# --------------------------------------------------------------------------- scoring, attention, reach


@pytest.fixture(scope="module")
def tiny_t5(t5_dir):
    model, tok = M.load_model(str(t5_dir), task="seq2seq-lm", device="cpu")
    return model, tok


def test_target_logprobs_equal_the_library_loss_times_the_target_length(tiny_t5):
    from hubhelpers import seq2seq as S

    model, tok = tiny_t5
    sources, targets = ["Bolami lives in Arvel.", "Where does Gize live?"], ["Arvel", "Gize lives in Brisk."]
    scores = S.target_logprobs(model, tok, sources, targets, batch_size=1)
    for source, target, score in zip(sources, targets, scores):
        batch = S.encode_pairs(tok, [source], [target])
        with torch.inference_mode():
            loss = model(**batch).loss.item()  # mean NLL over the target's tokens, eos included
        assert score == pytest.approx(-loss * batch["labels"].shape[1], rel=1e-5)
    assert S.target_logprobs(model, tok, sources, targets, batch_size=2) == pytest.approx(scores, rel=1e-5)


def test_rank_options_picks_the_most_probable_option_of_each_list(tiny_t5):
    from hubhelpers import seq2seq as S

    model, tok = tiny_t5
    sources = ["What pet does Bolami keep?", "Which month?"]
    options = [["cat", "dog", "owl"], ["May", "June"]]
    chosen = S.rank_options(model, tok, sources, options)
    for source, opts, pick in zip(sources, options, chosen):
        scores = S.target_logprobs(model, tok, [source] * len(opts), opts)
        assert pick == opts[scores.index(max(scores))]
    with pytest.raises(ValueError, match="non-empty option list per source"):
        S.rank_options(model, tok, sources, [["cat"], []])
    with pytest.raises(ValueError, match="got 2 sources and 1 option lists"):
        S.rank_options(model, tok, sources, [["cat"]])


def test_attention_maps_encoder_sees_all_decoder_is_causal(tiny_t5):
    from hubhelpers import seq2seq as S

    model, tok = tiny_t5
    maps = S.attention_maps(model, tok, "Bolami lives in Arvel.", "Arvel")
    n_source = len(S.text_ids(tok, "Bolami lives in Arvel.", 256))
    n_target = len(S.text_ids(tok, "Arvel", 64))
    assert maps["encoder"].shape == (n_source, n_source)
    assert maps["decoder"].shape == (n_target, n_target) and maps["cross"].shape == (n_target, n_source)
    for weights in maps.values():
        assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[0]), atol=1e-5)  # each row a distribution
    later = torch.ones(n_source, n_source, dtype=torch.bool).triu(1)  # (query, key) pairs with the key later
    assert maps["encoder"][later].min() > 0  # every source position sees the later ones
    assert maps["decoder"][later[:n_target, :n_target]].abs().max() == 0  # no target position sees a later one
    assert model.config._attn_implementation != "eager"  # the model itself is left as it was


def test_earlier_positions_changed_tells_bidirectional_from_causal(tiny_t5):
    from hubhelpers import seq2seq as S

    model, tok = tiny_t5
    ids = tok("Bolami lives in Arvel and keeps a cat.", add_special_tokens=False)["input_ids"]
    encoder = model.get_encoder()
    assert S.earlier_positions_changed(lambda x: encoder(input_ids=x).last_hidden_state[0], ids, ids[0]) == 1.0
    decoder = model.get_decoder()
    memory = encoder(input_ids=torch.tensor([ids])).last_hidden_state

    def causal(x):
        return decoder(input_ids=x, encoder_hidden_states=memory).last_hidden_state[0]

    assert S.earlier_positions_changed(causal, ids, ids[0]) == 0.0
    with pytest.raises(ValueError, match="new last token different"):
        S.earlier_positions_changed(causal, ids, ids[-1])


def test_lora_on_t5_attention_trains_the_adapters_only(t5_dir):
    from hubhelpers import lora as L
    from hubhelpers import seq2seq as S
    from hubhelpers.training import TrainConfig

    model, tok = M.load_model(str(t5_dir), task="seq2seq-lm", device="cpu")
    targets = L.lora_targets("attn", model)
    assert targets == tuple(f"{part}.{x}" for part in ("SelfAttention", "EncDecAttention") for x in "qkvo")
    peft_model = L.lora_model(model, r=2, alpha=4, target_modules=targets, task_type="SEQ_2_SEQ_LM")
    assert type(peft_model).__name__ == "PeftModelForSeq2SeqLM"
    trainable, total, fraction = L.trainable_fraction(peft_model)
    assert 0 < fraction < 0.2 and trainable == sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    pairs = [("Summarize: Bolami lives in Arvel.", "Bolami lives in Arvel.")] * 4
    cfg = TrainConfig(steps=3, batch_size=2, lr=1e-2, warmup_steps=1, eval_every=3, checkpoint_every=30,
                      micro_batches=1)
    S.train_pairs(peft_model, tok, pairs, cfg, progress=False)
    changed = {n for n, p in peft_model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_B" in n or "lora_A" in n for n in changed)
