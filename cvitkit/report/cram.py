"""CRAM (arXiv 2606.02502) on UCIT and TriGap: the tables the kit regenerates.

Known numbers: three *secondary* headline scores (a third-party listing; backbone and evaluation stage
unknown) and the authors' code hyperparameters (class *code*). Every layout is inferred
(``paper_numbers.md`` §4).
"""

from __future__ import annotations

from cvitkit.report import plots
from cvitkit.report.columns import (adapter_params, config_value, final_score, params_ratio, rank_summary, ti_metric)
from cvitkit.report.reported import ReportedSpec
from cvitkit.report.specs import ColumnSpec, FigureSpec, RowSpec, TableSpec

PAPER = "cram"
UCIT_TASKS = ("ImageNet-R", "ArxivQA", "VizWiz-Cap", "IconQA", "CLEVR", "Flickr30k")
TRIGAP_TASKS = ("PMCVQA", "DocVQA", "ChartQA", "IconQA", "InfographicVQA", "ArxivQA", "Roadside", "ChemVQA",
                "FloodNetVQA", "CLEVR")
METHODS = (("Zero-shot", "zero_shot"), ("LoRA", "lora_ft"), ("Replay (+LoRA)", "replay"), ("EWC", "ewc"),
           ("O-LoRA", "olora"), ("SMoLoRA", "smolora"), ("MoELoRA", "moelora"), ("CRAM", "cram"))
_METRICS_TEXT = ("Last = mean final accuracy over the tasks (last row of the accuracy matrix, = MFN); Avg = mean over "
                 "stages of the mean accuracy on the tasks seen so far (= MAA); BWT = mean over tasks 1..T-1 of "
                 "(final - right-after-learning) accuracy, in points (standard definitions; the paper's wording was "
                 "not available).")


def _metrics():
    return [ti_metric("MFN", "Last"), ti_metric("MAA", "Avg"), ti_metric("BWT")]


def _main(suite: str, name: str, tasks, scoring: str, reported_file: str, task_note: str) -> TableSpec:
    return TableSpec(
        id=f"cram_{suite}", paper=PAPER,
        title=f"CRAM: {name} main results",
        caption=(f"Final score per task after the last {name} task ({scoring}), Last, Avg and BWT. " + _METRICS_TEXT
                 + f" {task_note} The kit's tiny model on synthetic analogues is not expected to match absolute "
                   "scores: compare orderings and gaps."),
        layout=(f"inferred (paper_numbers.md §4): {len(tasks)} task columns in the benchmark order + summary metrics "
                "(expected Last, Avg, BWT); rows from the code's method registry (Zero-shot, LoRA, Replay+LoRA, EWC, "
                "O-LoRA, SMoLoRA, MoELoRA, CL-MoE, ModalPrompt, HiDe-LLaVA, DisCo, SAME, CRAM); the kit implements "
                "the rows shown. The paper may also report a second backbone (InternVL)."),
        rows=[RowSpec(label, f"{suite}/{m}") for label, m in METHODS],
        columns=[*(final_score(t) for t in tasks), *_metrics()],
        reported=ReportedSpec(reported_file, key="method"),
    )


UCIT = _main("ucit", "UCIT", UCIT_TASKS, "VizWiz-Cap and Flickr30k: mean of BLEU-1..4, METEOR, ROUGE-L, CIDEr; "
             "others exact match", "cram_ucit.csv",
             "The reported ImageNet-R score (secondary) has an unknown backbone and an unknown stage (after the last "
             "task or right after learning ImageNet-R); it is shown in the final-score column for comparison only.")
TRIGAP = _main("trigap", "TriGap", TRIGAP_TASKS, "DocVQA and InfographicVQA: ANLS without threshold; others exact "
               "match", "cram_trigap.csv",
               "The reported PMCVQA score (secondary, 'TriGap (test)') has an unknown backbone and an unknown stage; it "
               "is shown in the final-score column for comparison only.")

PARAMS = TableSpec(
    id="cram_param_efficiency", paper=PAPER,
    title="CRAM: parameter efficiency (UCIT)",
    caption=("Adapter parameters after the last UCIT task: all the method adds (total), those trainable in the last "
             "task, the total relative to one LoRA (LoRA-FT), and Last. O-LoRA keeps one LoRA per task (one expert per "
             "task, fixed rank); CRAM keeps one expert per task whose rank per layer is chosen by SVD of a warm-up "
             "buffer, so its total should grow more slowly."),
    layout="inferred (paper_numbers.md §4): a parameter-count comparison is expected; its rows and numbers are unknown.",
    rows=[RowSpec("LoRA-FT", "ucit/lora_ft"), RowSpec("O-LoRA (one LoRA per task)", "ucit/olora"),
          RowSpec("MoELoRA", "ucit/moelora"), RowSpec("CRAM", "ucit/cram")],
    columns=[adapter_params("total"), adapter_params("trainable", "trainable params (last task)"),
             params_ratio("ucit/lora_ft", "x LoRA-FT"), ti_metric("MFN", "Last")],
)

ABLATION = TableSpec(
    id="cram_ablation", paper=PAPER,
    title="CRAM: ablations (UCIT)",
    caption=("CRAM without adaptive rank (fixed-rank experts), without centroid routing (learned linear router), "
             "without the orthogonality penalty (lambda = 0) and without semantic pools (a single pool). "
             + _METRICS_TEXT),
    layout=("inferred (paper_numbers.md §4): ablations of pools / centroid routing / adaptive rank / orthogonality; "
            "numbers unknown."),
    row_header="variant",
    rows=[RowSpec("CRAM (full)", "ucit/cram"), RowSpec("w/o adaptive rank", "ucit/cram__no_adaptive_rank"),
          RowSpec("w/o centroid routing", "ucit/cram__no_centroid"),
          RowSpec("w/o orthogonality penalty", "ucit/cram__no_orth"),
          RowSpec("w/o semantic pools", "ucit/cram__no_pools")],
    columns=_metrics(),
)

RANKS = TableSpec(
    id="cram_ranks", paper=PAPER,
    title="CRAM: per-layer ranks of the experts (UCIT)",
    caption=("Rank of each task's expert over the adapted layers, as allocated by the SVD of its warm-up buffer "
             "(statistics.json 'ranks'): mean, smallest and largest over layers. The paper's code bounds ranks to "
             "[4, 9] on UCIT; the kit's tiny preset uses smaller bounds (config)."),
    layout="inferred: no per-layer rank number of the paper is known; a kit analysis of the adaptive-rank mechanism.",
    row_header="expert (task)",
    rows=[RowSpec(f"expert {i + 1} ({t})", "ucit/cram", params={"stage": i}) for i, t in enumerate(UCIT_TASKS)],
    columns=[rank_summary("mean", "mean rank"), rank_summary("min", "min rank"), rank_summary("max", "max rank"),
             rank_summary("layers", "layers")],
)

MMMU = TableSpec(
    id="cram_mmmu", paper=PAPER,
    title="CRAM: MMMU general capability",
    caption=("A general-capability check on MMMU (sub-score 'Art'). The kit has no MMMU analogue, so this table shows "
             "the reported number only."),
    layout="inferred (paper_numbers.md §4): an MMMU table with sub-scores; only 'Art' is known (secondary).",
    rows=[RowSpec("CRAM", None)],
    columns=[ColumnSpec("Art", None, "MMMU Art sub-score")],
    reported=ReportedSpec("cram_mmmu.csv", key="method"),
)

_HP_KEYS = {
    "level-1 pool margin threshold": ("delta_threshold", "theta", "pool_margin"),
    "RBF routing bandwidth": ("rbf_sigma", "route_rbf_sigma", "sigma"),
    "singular-value allocation threshold": ("svd_tau_alloc", "tau_alloc"),
    "novelty/orthogonality threshold": ("svd_tau_novel", "tau_novel", "tau_orth"),
    "visual warm-up fraction": ("visual_warmup_ratio", "warmup_fraction"),
    "temporary buffer rank": ("rank_total", "buffer_rank"),
    "LoRA placement": ("targets", "target_modules"),
    "per-device batch size": ("batch_size", "per_device_batch_size"),
    "epochs per task": ("epochs", "num_epochs", "epochs_per_task"),
    "learning rate": ("lr", "learning_rate"),
    "warmup ratio": ("warmup_ratio",),
    "expert max rank": ("rank_max", "expert_rank_max"),
    "expert min rank": ("rank_min", "expert_rank_min"),
    "max expert slots": ("max_slots", "slots"),
    "max semantic pools": ("max_groups", "max_pools"),
    "orthogonality loss weight": ("dec_lambda", "orth_lambda", "lambda_orth"),
}

HPARAMS = TableSpec(
    id="cram_hparams", paper=PAPER,
    title="CRAM: hyperparameters",
    caption=("The authors' code settings (class code: stated there to match the paper's Sec. 5.1 / Tab. 5; some are "
             "hard-coded and may not appear in Tab. 5) beside the kit's settings for the ucit/cram run (config.json). "
             "The kit scales ranks down for its tiny model."),
    layout="inferred: the content of the paper's Tab. 5 is known only through the code's docstring.",
    row_header="hyperparameter",
    rows=[RowSpec(name, "ucit/cram", params={"keys": keys}) for name, keys in _HP_KEYS.items()],
    columns=[config_value("value")],
    reported=ReportedSpec("cram_hparams.csv", key="hyperparameter"),
)

TABLES = [UCIT, TRIGAP, PARAMS, ABLATION, RANKS, MMMU, HPARAMS]


def _matrix(suite: str, method: str, label: str) -> FigureSpec:
    run_id = f"{suite}/{method}"
    return FigureSpec(f"cram_matrix_{suite}_{method}", PAPER, f"{suite.upper()} accuracy matrix: {label}",
                      "score on each task (column) after each stage (row)", [run_id],
                      lambda store: plots.matrix_figure(store.run(run_id), f"{label} on {suite.upper()} (measured)"))


FIGURES = [
    _matrix("ucit", "cram", "CRAM"), _matrix("ucit", "lora_ft", "LoRA"), _matrix("trigap", "cram", "CRAM"),
    FigureSpec("cram_forgetting_ucit", PAPER, "UCIT forgetting curves: CRAM",
               "each task's score over the stages", ["ucit/cram"],
               lambda store: plots.forgetting_figure(store.run("ucit/cram"), "CRAM on UCIT (measured)")),
    FigureSpec("cram_ranks_ucit", PAPER, "CRAM expert ranks per layer (UCIT)",
               "rank allocated to each task's expert in every adapted layer (statistics.json ranks)", ["ucit/cram"],
               lambda store: plots.ranks_figure(store.run("ucit/cram"), UCIT_TASKS, "CRAM ranks on UCIT (measured)")),
    FigureSpec("cram_routing_ucit", PAPER, "CRAM expert usage per layer (UCIT)",
               "fraction of routing mass per expert in every adapted layer after the last task", ["ucit/cram"],
               lambda store: plots.expert_usage_figure({"CRAM": store.run("ucit/cram")},
                                                       "CRAM routing after the last task (measured)")),
]
