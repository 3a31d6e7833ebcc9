"""The README course map's "measured effect" column, written from ``build/results.json`` by ``make course``.

One template per notebook: a ``str.format`` string whose fields are the figures that notebook records, so the
numbers in the map are always the last run's, never typed by hand. A dict figure is indexed by its key as written
in results.json (``{acc_by_shots[8]:.2f}``: the key is the string ``"8"``). ``make course`` rewrites the column
for every notebook that passed with the committed defaults (no ``-p``/``-r``); a template naming a figure the run
did not record raises, naming the notebook and the figure.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

COLUMN = "measured effect"

EFFECTS: dict[str, str] = {
    "00": "environment report; {n_libraries_imported} course libraries import offline",
    "01": "bigram vs neural perplexity on held-out text ({bigram_perplexity:.1f} vs {model_perplexity:.2f}); "
          "next-token distribution; entropy rises {entropy_gain_max_vs_min_temperature:.1f} nats from the lowest to "
          "the highest temperature; at temperature 2 top-k / top-p cut wrong sampled answers "
          "{sampled_wrong_share[plain]:.2f} → {sampled_wrong_share[top-k, k=5]:.2f} / "
          "{sampled_wrong_share[top-p, p=0.8]:.2f} (hand-written filters equal transformers')",
    "02": "loss curves; validation loss vs parameters for 3 sizes on one budget ({scaling_val_losses[nano]:.2f} → "
          "{scaling_val_losses[small]:.2f}); {train_tokens_per_s:,.0f} tokens/s; the shipped model's card "
          "({shipped_to_here_token_ratio:.0f}× this budget); what makes it large: tokens per parameter GPT-3 "
          "{tokens_per_param[GPT-3 175B]:.1f}, Chinchilla {tokens_per_param[Chinchilla 70B]:.0f}, Llama 2 7B "
          "{tokens_per_param[Llama 2 7B]:.0f}, the shipped model {tokens_per_param[tinyworld (shipped)]:.0f}; 6·N·D "
          "from {compute_flops[tinyworld (shipped)]:.1e} to {compute_flops[Llama 2 70B]:.1e} FLOPs",
    "03": "accuracy by prompt template (best minus worst {template_margin_best_vs_worst:.2f}); recall "
          "{recall_acc_within_window:.2f} inside a 128-token window, {recall_acc_beyond_window:.2f} beyond; "
          "retrieve-then-ask recovers it ({recall_acc_beyond_window_retrieved:.2f})",
    "04": "accuracy vs shots k ({acc_by_shots[0]:.2f} → {acc_by_shots[8]:.2f}; a relation defined only by the shots: "
          "{acc_by_shots_new_task[0]:.2f} → {acc_by_shots_new_task[8]:.2f}, copying a shown label "
          "{new_task_copy_baseline_8_shots:.2f}); accuracy spread across orders of the same examples: clean "
          "{order_spread:.2f}, imperfect up to {order_spread_noisy:.2f}; accuracy as prompts outgrow the "
          "window {acc_by_long_shots[8]:.2f} → {acc_by_long_shots[64]:.2f}; a relation never seen in pretraining "
          "{unseen_relation_acc_8_shots:.2f}; a new operation (first letter of the pet) {letter_task_acc_8_shots:.2f}",
    "05": "hand-written SGD step equals torch.optim.SGD (max difference {sgd_step_max_abs_diff:.1g}); new-relation "
          "accuracy {task_acc_before:.2f} → {task_acc_after:.2f}; LR sweep too small / good / too large "
          "({lr_sweep_acc[1e-05]:.2f} / {lr_sweep_acc[0.003]:.2f} / {lr_sweep_acc[0.3]:.2f})",
    "06": "held-out instruction accuracy {instruction_acc_before:.2f} → {instruction_acc_after:.2f}; same budget, "
          "loss on all tokens: {instruction_acc_all_tokens:.2f} (learning curves of both); unseen wordings of the "
          "trained instructions {reworded_acc_before:.2f} → {reworded_acc_after:.2f}, new answer formats "
          "{new_form_acc_before:.2f} → {new_form_acc_after:.2f} (a trained format instead: "
          "{new_form_fallback_rate:.2f})",
    "07": "hand-written LoRA layer equals PEFT's (max difference {hand_vs_peft_max_abs_diff:.1g}); "
          "{lora_trainable_fraction:.1%} trainable parameters: LoRA {lora_acc:.2f} vs full fine-tuning "
          "{full_ft_acc:.2f} (the same linears without embeddings/output: {lora_linears_only_acc:.2f}); QLoRA "
          "{qlora_acc:.2f} on a 4-bit base at {qlora_base_memory_ratio:.2f} of fp32; rank sweep; exact merge; "
          "Llama-2-7B plan: QLoRA {llama2_plan_total_gib[Llama-2-7B qlora]:.1f} GiB, LoRA "
          "{llama2_plan_total_gib[Llama-2-7B lora]:.1f} GiB, full {llama2_plan_total_gib[Llama-2-7B full]:.0f} GiB",
    "08": "reconstruction error vs bits (2-bit {recon_error_2bit_over_8bit:.0f}× 8-bit), one outlier vs block scales "
          "({outlier_tensor_over_block:.1f}×); held-out perplexity {ppl_fp32:.2f} → {ppl_by_bits[8]:.2f} (8-bit), "
          "{ppl_by_bits[4]:.2f} (4-bit), {ppl_by_bits[2]:.0f} (2-bit); bitsandbytes LLM.int8 and NF4 footprints "
          "{footprint_ratio_bnb_int8:.2f} / {footprint_ratio_bnb_nf4:.2f} of fp32; CPU latency NF4 / fp32 "
          "{latency_ratio_nf4_over_fp32:.2f}; fp16 / bf16 casts: round-trip error bf16 "
          "{roundtrip_error_bf16_over_fp16:.0f}× fp16's, perplexity {ppl_by_float[fp16]:.4f} / "
          "{ppl_by_float[bf16]:.4f} vs fp32 {ppl_fp32:.4f}",
    "09": "hallucination rate {hallucination_rate_known:.2f} on known vs {hallucination_rate_heldout:.2f} on held-out "
          "people; sequence-probability detector AUROC {confidence_auroc:.2f} (self-consistency "
          "{self_consistency_auroc:.2f}); abstaining when unsure: held-out hallucinations "
          "{hallucination_rate_heldout:.2f} → {hallucination_rate_heldout_abstaining:.2f} (answering "
          "{coverage_heldout_abstaining:.0%}), known people {hallucination_rate_known_abstaining:.2f}",
    "10": "recall@3 {recall_at_3:.2f}; held-out accuracy {acc_without_retrieval:.2f} → {acc_with_retrieval:.2f} with "
          "cited chunks (3 chunks in the prompt: {acc_with_retrieval_k3:.2f}); chunk-size sweep; planted text in a "
          "retrieved chunk (a false sentence about the person wins {poison_distractor_followed:.2f}, an injected "
          "instruction {poison_instruction_followed:.2f})",
    "11": "reward-model pair accuracy {reward_model_pair_acc:.2f}; REINFORCE with RLOO's baseline: reward "
          "{mean_reward_before:.2f} → {mean_reward_after:.2f} with KL {kl_to_reference:.2f} nats, preferred style "
          "{preferred_rate_before:.2f} → {preferred_rate_after:.2f} (batch-mean baseline: "
          "{preferred_rate_after_batch_mean:.2f}); without the KL penalty (β = 0) the KL reaches "
          "{sweep_beta_kl[0]:.0f} nats against {sweep_beta_kl[1.5]:.1f} at β = 1.5, and well-formed replies fall "
          "{wellformed_rate[with KL]:.2f} → {wellformed_rate[without KL]:.2f} (reward hacking); DPO preference "
          "{dpo_pref_rate_before:.2f} → {dpo_pref_rate_after:.2f} on style pairs; at λ = 0 r_env changes "
          "{lambda0_r_env_change[trained-on people]:+.2f} "
          "on trained-on and {lambda0_r_env_change[held-out people]:+.2f} on held-out people; PPO's clipped objective "
          "checked by autograd",
    "12": "task-A accuracy {task_a_acc_before:.2f} → {task_a_acc_after_b:.2f} after training on B; forgetting vs α "
          "(α = 0.5: {forgetting_ratio_alpha_half:.2f} of α = 0's); L2 anchoring cuts forgetting by "
          "{anchor_forgetting_reduction:.2f}; replayed facts kept ({replayed_acc_alpha_half:.2f} at α = 0.5); LoRA "
          "(attention + embeddings/output) learns B ({lora_b_acc:.2f}) yet forgets A too "
          "({lora_forgetting_over_full:.2f} of full fine-tuning's forgetting)",
    "13": "fine-tuned MiniLM {finetuned_acc:.2f} vs frozen-embedding baseline {frozen_baseline_acc:.2f}; the "
          "baseline's errors go to the distractor topic ({baseline_errors_to_distractor:.1%} of them); confusion "
          "matrix",
    "14": "field micro-F1 zero-shot {field_f1_by_method[zero-shot]:.2f}, few-shot {field_f1_by_method[few-shot]:.2f}, "
          "fine-tuned {field_f1_by_method[fine-tuned]:.2f} on held-out documents; valid JSON "
          "{valid_json_rate_by_method[zero-shot]:.2f} → {valid_json_rate_by_method[fine-tuned]:.2f}; the LangChain "
          "chain agrees with the direct call {chain_agreement_with_direct:.2f}",
    "15": "paraphrase search top-1: MiniLM {semantic_top1_acc:.2f} vs TF-IDF {keyword_top1_acc:.2f} vs the causal LM's "
          "mean-pooled states {lm_embedding_top1_acc:.2f}; similarity heatmap; 2-D map; an LCEL retrieve-then-answer "
          "chain ({chain_acc_without_retrieval:.2f} → {chain_acc_with_retrieval:.2f}; the reader answers "
          "{reader_acc_gold_passage[own wording]:.2f} from the world's own wording, "
          "{reader_acc_gold_passage[paraphrase]:.2f} from a paraphrase)",
    "16": "CodeCarbon (offline) energy and CO₂eq of a real run, with its measurement method; achieved "
          "{achieved_gflops:.0f} GFLOP/s from 6·N·D; 6·N·D for GPT-3 at {gpt3_flops_ratio:.3f}× the paper's; the "
          "Llama 2 paper's emissions reproduced by GPU-hours × 400 W × intensity (largest error "
          "{llama2_max_rel_error:.2%})",
    "17": "changing the last input token changes {encoder_earlier_positions_changed:.0%} of the earlier positions in "
          "T5's encoder, {decoder_only_earlier_positions_changed:.0%} in the decoder-only model; dialogue summaries "
          "on held-out people, ROUGE-L: base model zero-shot {rouge_zero_shot[rougeL]:.2f}, few-shot "
          "{rouge_few_shot[rougeL]:.2f}, full fine-tuning {rouge_full_ft[rougeL]:.2f}, LoRA {rouge_lora[rougeL]:.2f} "
          "({lora_trainable_fraction:.1%} trainable; {rougeL_lora_over_full:.2f} of full); a held-out task "
          "cluster after 0 → 3 tuning clusters: {heldout_task_acc_by_n_clusters[0]:.2f} → "
          "{heldout_task_acc_by_n_clusters[3]:.2f} (chance {heldout_task_chance:.2f}), "
          "{heldout_answers_in_a_trained_format:.0%} of answers in a trained task's format",
    "18": "the same {n_parallel_strings} CLDR strings in 44 languages cost up to {max_parity_ratio:.1f}× the "
          "tokens of English; MiniLM's WordPiece turns whole scripts into [UNK] (up to {minilm_max_unk_rate:.0%}); "
          "a BPE fitted to Amharic: parity {own_tokenizer_parity:.2f} vs the model's "
          "{parity_ratio_by_language[model:am]:.2f}; a scarce synthetic language: perplexity per word "
          "{scarce_ppl_scratch:.0f} from scratch, {scarce_ppl_transfer:.0f} by transfer, "
          "{scarce_ppl_transfer_ext:.0f} with a grown vocabulary ({tokens_after_over_before:.2f}× the tokens)",
    "19": "a fine-tuning set with the world's share of doctors, most of them in one country (rate gap "
          "{data_skew:+.2f}, the world's 0): the model's answers on held-out people {model_skew_heldout:+.2f} "
          "(amplification {bias_amplification:+.2f}); swapping "
          "only the town changes {counterfactual_flip_rate:.0%} of answers; counterfactual augmentation: gap "
          "{skew_after_mitigation:+.2f}, flips {counterfactual_flip_rate_after_mitigation:.0%}, task accuracy "
          "{task_acc_before_after_mitigation[before]:.2f} → {task_acc_before_after_mitigation[after]:.2f}; the card "
          "reports {card_co2_eq_emissions_g:.2f} g CO₂eq",
}


class _FigureFormatter(string.Formatter):
    """str.format over a notebook's figures, with dict keys looked up as the strings results.json holds."""

    def __init__(self, notebook: str) -> None:
        self.notebook = notebook

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        """Resolve ``name`` or ``name[key]`` against the figures, naming the notebook when one is missing."""
        name, _, rest = field_name.partition("[")
        if name not in kwargs:
            raise KeyError(f"{self.notebook}: the effect template names figure {name!r}, which the run did not "
                           f"record; recorded: {sorted(kwargs)}")
        value = kwargs[name]
        while rest:
            key, _, rest = rest.partition("]")
            rest = rest.removeprefix("[")
            if not isinstance(value, Mapping) or key not in value:
                keys = sorted(value) if isinstance(value, Mapping) else type(value).__name__
                raise KeyError(f"{self.notebook}: figure {name!r} has no key {key!r}; it has {keys}")
            value = value[key]
        return value, field_name


def template_figures(template: str) -> list[str]:
    """The figure names a template reads (the part of each field before any ``[key]``)."""
    return [field.partition("[")[0] for _, field, _, _ in string.Formatter().parse(template) if field]


def render_effect(notebook: str, figures: Mapping[str, Any], templates: Mapping[str, str] = EFFECTS) -> str:
    """The map's effect text for ``notebook`` (a stem like '07_lora_and_qlora') from its recorded figures."""
    number = notebook[:2]
    if number not in templates:
        raise KeyError(f"no effect template for notebook {notebook!r}; templates exist for {sorted(templates)}")
    return _FigureFormatter(notebook).vformat(templates[number], (), dict(figures))


def effect_cells(results: Mapping[str, Mapping[str, Any]], notebooks: list[str]) -> dict[str, str]:
    """README cells ('07' -> text) for ``notebooks`` (stems), from results.json's figures."""
    return {name[:2]: render_effect(name, results.get(name, {})) for name in notebooks}
