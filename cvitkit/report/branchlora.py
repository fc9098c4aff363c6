"""BranchLoRA (arXiv 2506.02041, ACL 2025) on CoIN: the tables the kit regenerates.

Every reported number of this paper is *secondary* (a third-party machine-written note); no table of
the paper itself was readable, so every layout below is inferred (``paper_numbers.md`` §2).
"""

from __future__ import annotations

from cvitkit.report import plots
from cvitkit.report.columns import (adapter_params, config_value, final_score, ms_per_step, statistic, ti_metric)
from cvitkit.report.reported import ReportedSpec
from cvitkit.report.specs import FigureSpec, RowSpec, TableSpec

PAPER = "branchlora"
SUITE = "coin"
#: CoIN task order (protocols.md §3), the paper's column names.
TASKS = ("ScienceQA", "TextVQA", "ImageNet", "GQA", "VizWiz", "Grounding", "VQAv2", "OCR-VQA")

_METRICS_TEXT = ("ACC = mean final accuracy over the 8 tasks (last row of the accuracy matrix); MAA = mean over "
                 "stages of the mean accuracy on the tasks seen so far; BWT = mean over tasks 1..7 of (final "
                 "accuracy - accuracy right after learning the task), in points, negative = forgetting.")


def _acc_maa_bwt():
    return [ti_metric("MFN", "ACC"), ti_metric("MAA"), ti_metric("BWT")]


def _run(method: str) -> str:
    return f"{SUITE}/{method}"


MAIN = TableSpec(
    id="branchlora_main", paper=PAPER,
    title="BranchLoRA: CoIN main results",
    caption=("Per-task final accuracy after the last CoIN task, ACC, MAA, BWT and adapter parameters. " + _METRICS_TEXT
             + " Multi-task is joint training on all tasks (one stage: its MAA is its final mean accuracy, BWT "
               "undefined; the paper gives MAA only). 'tunable params' measured = all adapter parameters the method "
               "adds (summary.json adapter_total). Reported numbers are for LLaVA-1.5-7B; the kit's are a tiny "
               "model on synthetic CoIN analogues: compare orderings and gaps, not absolute values."),
    layout=("inferred (paper_numbers.md §2): rows LoRA, LwF, EWC, MoELoRA, BranchLoRA, Multi-task (Zero-shot possible); "
            "the 8 per-task columns are very likely but no per-task number is known."),
    rows=[RowSpec("Zero-shot", _run("zero_shot")), RowSpec("LoRA", _run("lora_ft")), RowSpec("LwF", _run("lwf")),
          RowSpec("EWC", _run("ewc")), RowSpec("MoELoRA", _run("moelora")), RowSpec("BranchLoRA", _run("branchlora")),
          RowSpec("Multi-task", _run("multitask"))],
    columns=[*(final_score(t) for t in TASKS), *_acc_maa_bwt(),
             adapter_params("total", "tunable params", reported="tunable_params")],
    reported=ReportedSpec("branchlora_main.csv", key="method"),
)

LARGE = TableSpec(
    id="branchlora_large", paper=PAPER,
    title="BranchLoRA: larger backbone",
    caption=("MoELoRA vs BranchLoRA on a larger backbone. The paper uses LLaVA-1.5-13B; the kit runs the same "
             "methods on its larger tiny model (variant 'large', preset tiny-20m). " + _METRICS_TEXT),
    layout=("inferred (paper_numbers.md §2): a scale table or figure with MoELoRA and BranchLoRA; other 13B baselines "
            "unknown."),
    rows=[RowSpec("MoELoRA", _run("moelora__large")), RowSpec("BranchLoRA", _run("branchlora__large"))],
    columns=_acc_maa_bwt(),
    reported=ReportedSpec("branchlora_llava13b.csv", key="method"),
)

ABLATION = TableSpec(
    id="branchlora_ablation", paper=PAPER,
    title="BranchLoRA: cumulative component ablation",
    caption=("Components added one at a time to the CoIN MoELoRA baseline: a shared A matrix (trunk), sparse top-k "
             "routing, freezing of the most-used branches after each task, task-specific routers with a task selector "
             "(= full BranchLoRA). " + _METRICS_TEXT),
    layout=("inferred (paper_numbers.md §2): cumulative rows as named by the secondary note; the third step is called "
            "'Dynamic Chunking Routing' there and is implemented in the kit as sparse top-k routing (variant 'sparse')."),
    row_header="variant",
    rows=[RowSpec("MoELoRA baseline", _run("moelora")),
          RowSpec("+ Shared Matrix A", _run("branchlora__shared_a")),
          RowSpec("+ Dynamic Chunking Routing", _run("branchlora__sparse")),
          RowSpec("+ Flexible Freezing Mechanism", _run("branchlora__freeze")),
          RowSpec("+ Task-Specific Router (full BranchLoRA)", _run("branchlora"))],
    columns=_acc_maa_bwt(),
    reported=ReportedSpec("branchlora_ablation.csv", key="variant"),
)

EFFICIENCY = TableSpec(
    id="branchlora_efficiency", paper=PAPER,
    title="BranchLoRA: parameter and time efficiency",
    caption=("Adapter parameters (all the method adds; and those still trainable in the last task, after freezing) and "
             "training time per optimizer step. The paper times one batch on 8 x H800 GPUs; the kit times the median "
             "optimizer step of the whole run on the device named in the notes, with the profile's batch size. "
             "Compare the BranchLoRA/MoELoRA ratio, not the absolute values."),
    layout=("inferred (paper_numbers.md §2): rows MoELoRA, BranchLoRA; columns tunable params, training time "
            "(ms / batch)."),
    rows=[RowSpec("MoELoRA", _run("moelora")), RowSpec("BranchLoRA", _run("branchlora"))],
    columns=[adapter_params("total", "tunable params", reported="tunable_params"),
             adapter_params("trainable", "trainable params (last task)"),
             ms_per_step("training time (ms / batch)", reported="training_time_ms_per_batch")],
    reported=ReportedSpec("branchlora_efficiency.csv", key="method"),
)

DIVERSITY = TableSpec(
    id="branchlora_diversity", paper=PAPER,
    title="BranchLoRA: instruction diversity",
    caption=("BranchLoRA trained with the default instruction templates vs more diverse templates (the paper's '10Type'; "
             "CoIN's Instruction_Type2 is the corresponding data switch; in the kit the variant 'diverse'). "
             + _METRICS_TEXT),
    layout="inferred (paper_numbers.md §2): only ACC is known for the two settings.",
    row_header="setting",
    rows=[RowSpec("default instructions", _run("branchlora")),
          RowSpec("more diverse instructions (10Type)", _run("branchlora__diverse"))],
    columns=[ti_metric("MFN", "ACC"), ti_metric("MAA", reported=None), ti_metric("BWT", reported=None)],
    reported=ReportedSpec("branchlora_instruction_diversity.csv", key="setting"),
)

SELECTOR = TableSpec(
    id="branchlora_selector", paper=PAPER,
    title="BranchLoRA: task-selector accuracy",
    caption=("Fraction of test inputs the task selector sends to the router of their own task (statistics.json "
             "'selector_accuracy' after the last task), overall and per task where the run records it."),
    layout=("inferred (paper_numbers.md §2): a single overall number (95.8 %) is known; per-task values are a kit "
            "addition."),
    rows=[RowSpec("BranchLoRA", _run("branchlora"))],
    columns=[statistic("selector_accuracy", "task-selector accuracy (%)", reported="selector_accuracy"),
             *(statistic("selector_accuracy", t, task=t) for t in TASKS)],
    reported=ReportedSpec("branchlora_selector.csv", key="method"),
)

HPARAMS = TableSpec(
    id="branchlora_hparams", paper=PAPER,
    title="BranchLoRA: hyperparameters",
    caption=("The paper's BranchLoRA settings (secondary) beside the kit's settings for the coin/branchlora run "
             "(config.json method_config). The kit scales rank and alpha down for its tiny model."),
    layout="inferred: the secondary note lists these values; the paper's hyperparameter table (if any) is unknown.",
    row_header="hyperparameter",
    rows=[RowSpec("LoRA rank r", _run("branchlora"), params={"keys": ("rank", "r", "lora_rank", "total_rank")}),
          RowSpec("LoRA alpha", _run("branchlora"), params={"keys": ("alpha", "lora_alpha")}),
          RowSpec("branches", _run("branchlora"),
                  params={"keys": ("n_branches", "branches", "num_branches", "n_experts")}),
          RowSpec("top-k", _run("branchlora"), params={"keys": ("top_k", "topk", "k")}),
          RowSpec("alignment loss weight lambda", _run("branchlora"),
                  params={"keys": ("align_lambda", "lambda_align", "alignment_weight", "align_weight")})],
    columns=[config_value("value")],
    reported=ReportedSpec("branchlora_hparams.csv", key="hyperparameter"),
)

TABLES = [MAIN, LARGE, ABLATION, EFFICIENCY, DIVERSITY, SELECTOR, HPARAMS]


def _matrix(method: str, label: str) -> FigureSpec:
    run_id = _run(method)
    return FigureSpec(f"branchlora_matrix_{method}", PAPER, f"CoIN accuracy matrix: {label} ({run_id})",
                      "score on each task (column) after each stage (row); the lower triangle is what the metrics use",
                      [run_id], lambda store: plots.matrix_figure(store.run(run_id), f"{label} on CoIN (measured)"))


FIGURES = [
    _matrix("branchlora", "BranchLoRA"), _matrix("moelora", "MoELoRA"), _matrix("lora_ft", "LoRA"),
    FigureSpec("branchlora_forgetting", PAPER, "CoIN forgetting curves: BranchLoRA",
               "each task's score over the stages; a drop after the task's own stage is forgetting",
               [_run("branchlora")],
               lambda store: plots.forgetting_figure(store.run(_run("branchlora")), "BranchLoRA on CoIN (measured)")),
    FigureSpec("branchlora_forgetting_lora", PAPER, "CoIN forgetting curves: LoRA",
               "each task's score over the stages for sequential LoRA fine-tuning", [_run("lora_ft")],
               lambda store: plots.forgetting_figure(store.run(_run("lora_ft")), "LoRA on CoIN (measured)")),
    FigureSpec("branchlora_routing", PAPER, "Branch usage per layer after the last task",
               "fraction of gate mass per branch (expert) in every adapted layer (statistics.json expert_usage)",
               [_run("branchlora"), _run("moelora")],
               lambda store: plots.expert_usage_figure({"BranchLoRA": store.run(_run("branchlora")),
                                                        "MoELoRA": store.run(_run("moelora"))},
                                                       "CoIN routing after the last task (measured)")),
]
