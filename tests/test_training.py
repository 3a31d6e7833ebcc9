"""The training loop on a tiny config: loss falls, parameters change, schedule, resume, determinism."""


import pytest
import torch

from hubhelpers import mixture
from hubhelpers import models as M
from hubhelpers import training as T
from hubhelpers import world as W

TINY = M.ModelConfig(vocab_size=400, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                     num_attention_heads=2, max_position_embeddings=256)


@pytest.fixture(scope="module")
def setup():
    world = W.make_world(W.WorldConfig(n_train=20, n_heldout=10))
    tok = M.train_tokenizer([ex.text for ex in mixture.pretraining_corpus(world, 400)], 400)

    def sample(rng, progress, size):
        return [mixture.pretraining_example(world, rng, progress) for _ in range(size)]

    return world, tok, sample


def _model(tok, seed=0):
    torch.manual_seed(seed)
    return M.build_model(TINY, tok)


def test_loss_falls_and_parameters_change(setup):
    _, tok, sample = setup
    model = _model(tok)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = T.TrainConfig(steps=60, batch_size=8, lr=3e-3, warmup_steps=5, eval_every=30)
    result = T.train(model, tok, sample, cfg, evaluate=lambda m: {"ok": 1.0}, progress=False)
    assert sum(result.losses[-5:]) / 5 < 0.7 * sum(result.losses[:5]) / 5
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)
    assert [e["step"] for e in result.evals] == [30, 60]
    assert result.tokens_seen > 0
    assert set(result.phase_s) == set(T.PHASES) and all(t > 0 for t in result.phase_s.values())
    assert sum(result.phase_s.values()) <= result.wall_s  # the split accounts for time inside the run


def test_lr_schedule_warmup_then_cosine():
    cfg = T.TrainConfig(steps=100, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [T.lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.05)


def test_labels_mask_prompt_only(setup):
    _, tok, _ = setup
    ex = W.Example("Q: Where does Bo live?\nA:", " Arvel\n", "closed_book")
    batch = T.encode_examples(tok, [ex, W.Example("", "Bo lives in Arvel.\n", "bio")])
    scored = batch["labels"][0][batch["labels"][0] != T.IGNORE_INDEX].tolist()
    assert tok.decode(scored) == " Arvel\n<|eos|>"
    assert (batch["labels"][1][1:][batch["attention_mask"][1][1:].bool()] != T.IGNORE_INDEX).all()


def test_example_mean_loss_weighs_examples_equally(setup):
    _, tok, _ = setup
    model = _model(tok)
    short = W.Example("Q: x\nA:", " Arvel\n", "closed_book")
    long = W.Example("", "Bo lives in Arvel. " * 10 + "\n", "bio")
    batch = T.encode_examples(tok, [short, long])
    with torch.no_grad():
        both = T.example_mean_loss(model, batch)
        each = [T.example_mean_loss(model, T.encode_examples(tok, [e])) for e in (short, long)]
    assert both.item() == pytest.approx((each[0] + each[1]).item() / 2, rel=1e-4)


def test_resume_from_checkpoint_equals_uninterrupted_run(setup, tmp_path):
    _, tok, sample = setup
    cfg = T.TrainConfig(steps=12, batch_size=4, warmup_steps=2, checkpoint_every=6, eval_every=100)
    full = _model(tok)
    T.train(full, tok, sample, cfg, progress=False)
    half = _model(tok)
    T.train(half, tok, sample, cfg, checkpoint_dir=tmp_path / "ck", progress=False, stop_after=6)
    resumed = _model(tok, seed=123)  # different init: everything must come from the checkpoint
    result = T.train(resumed, tok, sample, cfg, checkpoint_dir=tmp_path / "ck", progress=False)
    assert len(result.history) == 12
    for k, v in full.state_dict().items():
        assert torch.allclose(v, resumed.state_dict()[k], atol=1e-6), k


def test_corrupted_checkpoint_is_named(setup, tmp_path):
    _, tok, sample = setup
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupted"):
        T.train(_model(tok), tok, sample, T.TrainConfig(steps=2, warmup_steps=1), checkpoint_dir=ck,
                progress=False)


def test_checkpoint_of_another_config_is_refused(setup, tmp_path):
    _, tok, sample = setup
    cfg = T.TrainConfig(steps=4, batch_size=2, warmup_steps=1)
    T.train(_model(tok), tok, sample, cfg, checkpoint_dir=tmp_path / "ck", progress=False, stop_after=2)
    with pytest.raises(ValueError, match="another TrainConfig"):
        T.train(_model(tok), tok, sample, T.TrainConfig(steps=4, batch_size=2, warmup_steps=1, lr=1e-3),
                checkpoint_dir=tmp_path / "ck", progress=False)


def test_same_seed_same_losses(setup):
    _, tok, sample = setup
    cfg = T.TrainConfig(steps=5, batch_size=4, warmup_steps=1)
    a = T.train(_model(tok), tok, sample, cfg, progress=False).losses
    b = T.train(_model(tok), tok, sample, cfg, progress=False).losses
    assert a == b


def test_hand_written_sgd_step_matches_torch(setup):
    _, tok, _ = setup
    batch = T.encode_examples(tok, [W.Example("", "Bo lives in Arvel.\n", "bio")])
    a, b = _model(tok), _model(tok)
    T.example_mean_loss(a, batch).backward()
    with torch.no_grad():
        for p in a.parameters():
            p -= 0.1 * p.grad
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    T.example_mean_loss(b, batch).backward()
    opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-7)


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"lr": 5.0}, {"batch_size": -1}, {"warmup_steps": 10**6}])
def test_bad_config_is_named(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        T.TrainConfig(**kwargs)


def test_split_keeps_order_and_sizes():
    assert T._split(list(range(5)), 2) == [[0, 1, 2], [3, 4]]
    assert T._split([1], 3) == [[1]]


def _reference_loss(model, batch):
    """The loss written the plain way: every position's logits, masked cross-entropy, mean per example."""
    import torch.nn.functional as F

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    labels = batch["labels"][:, 1:]
    mask = labels != T.IGNORE_INDEX
    nll = F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none") * mask
    return (nll.sum(1) / mask.sum(1).clamp(min=1)).mean()


def _gpt2(tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=256,
                                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)).eval()


def _lora(tok):
    from hubhelpers.lora import BLOCK_LINEARS, lora_model, untie_output_embeddings

    model = lora_model(untie_output_embeddings(_model(tok)), r=2, alpha=4.0,
                       target_modules=BLOCK_LINEARS + ("embed_tokens", "lm_head"))
    for name, p in model.named_parameters():  # B starts at zero: make the adapters matter
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    return model


@pytest.mark.parametrize("make", [_model, _lora, _gpt2], ids=["llama", "llama+lora(head)", "gpt2"])
def test_scored_positions_loss_equals_all_logits_loss(setup, make):
    """The head runs only where labels are scored, and loss and gradients are those of the all-logits loss."""
    _, tok, _ = setup
    examples = [W.Example("Q: Where does Bo live?\nA:", " Arvel\n", "closed_book"),
                W.Example("", "Bo lives in Arvel. Bo has a pet owl.\n", "bio"),
                W.Example("Bo -> owl\nKa ->", " cat\n", "few_shot")]
    batch = T.encode_examples(tok, examples)
    fast, slow = make(tok), make(tok)
    loss_fast, loss_slow = T.example_mean_loss(fast, batch), _reference_loss(slow, batch)
    assert loss_fast.item() == pytest.approx(loss_slow.item(), rel=1e-5)
    scored = batch["labels"][:, 1:] != T.IGNORE_INDEX
    logits = M.logits_at(fast, batch["input_ids"], batch["attention_mask"], scored)
    assert logits.shape == (int(scored.sum()), len(tok))
    loss_fast.backward()
    loss_slow.backward()
    grads = [(n, p.grad, q.grad) for (n, p), q in zip(fast.named_parameters(), slow.parameters()) if p.requires_grad]
    assert grads and all(g is not None and torch.allclose(g, h, atol=1e-6) for _, g, h in grads), \
        [n for n, g, h in grads if g is None or not torch.allclose(g, h, atol=1e-6)]


def test_recipes_by_size_leave_the_shipped_model_as_tuned():
    from hubhelpers.training import RECIPES, recipe_for

    shipped = recipe_for(656_000)
    assert shipped is RECIPES[0] and (shipped.lr(3e-3), shipped.batch(32)) == (3e-3, 32)  # its figures cannot move
    small = recipe_for(135_000_000)
    assert small.lr(1e-3) == pytest.approx(1e-4) and small.batch(16) == 16
    llama = recipe_for(6_738_415_616)  # Llama-2-7B
    assert llama.lr(1e-2) == pytest.approx(2e-4) and llama.batch(32) == 8 and llama.batch(2) == 1
    factors = [r.lr_factor for r in RECIPES]
    assert factors == sorted(factors, reverse=True)  # bigger models, smaller steps
    with pytest.raises(ValueError, match="n_params must be an int >= 1, got 0"):
        recipe_for(0)
    with pytest.raises(ValueError, match="lr must be"):
        shipped.lr(2.0)
    with pytest.raises(ValueError, match="batch_size must be"):
        shipped.batch(0)


def test_encode_examples_without_a_bos_token(tiny_gpt2_dir):
    """A tokenizer with no bos token (Qwen2's) starts each row at the prompt; the prompt stays masked."""
    import copy

    from hubhelpers.models import load_tokenizer
    from hubhelpers.training import IGNORE_INDEX, encode_examples
    from hubhelpers.world import Example

    tok = copy.deepcopy(load_tokenizer(str(tiny_gpt2_dir)))
    tok.bos_token = None
    ex = Example(prompt="Q: Where does Ada live?\nA:", completion=" Arvel", kind="qa")
    batch = encode_examples(tok, [ex])
    prompt = tok(ex.prompt, add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][0, : len(prompt)].tolist() == prompt
    labels = batch["labels"][0].tolist()
    assert labels[: len(prompt)] == [IGNORE_INDEX] * len(prompt) and labels[-1] == tok.eos_token_id
