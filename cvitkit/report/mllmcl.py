"""MLLM-CL / MR-LoRA (arXiv 2506.05453): the tables the kit regenerates on DCL and ACL.

No result number of the paper is known (``paper_numbers.md`` §3): every table here is measured only,
and every layout is inferred from the released code and the benchmark.
"""

from __future__ import annotations

from cvitkit.report import plots
from cvitkit.report.columns import adapter_params, final_score, statistic, ti_metric
from cvitkit.report.specs import FigureSpec, RowSpec, TableSpec

PAPER = "mllmcl"
DCL_TASKS = ("RS", "Med", "AD", "Sci", "Fin")
ACL_TASKS = ("OCR", "Math", "VP", "APP")
METHODS = (("Zero-shot", "zero_shot"), ("LoRA-FT", "lora_ft"), ("MoELoRA", "moelora"), ("Replay", "replay"),
           ("O-LoRA", "olora"), ("MR-LoRA", "mr_lora"), ("MR-LoRA (oracle routing, upper bound)", "mr_lora__oracle"))
_NONE = " No result number of the MLLM-CL paper is known, so no reported column is shown."
_METRICS_TEXT = ("MFT = mean accuracy right after learning each task (diagonal of the accuracy matrix); MFN = mean "
                 "final accuracy (last row); MAA = mean over stages of the mean accuracy on the tasks seen so far; "
                 "BWT = mean over tasks 1..T-1 of (final - right-after-learning) accuracy, in points.")


def _metrics():
    return [ti_metric("MFT"), ti_metric("MFN"), ti_metric("MAA"), ti_metric("BWT")]


def _main(suite: str, name: str, tasks, order: str, extra: str) -> TableSpec:
    return TableSpec(
        id=f"mllmcl_{suite.split('_')[1]}", paper=PAPER,
        title=f"MLLM-CL: {name} main results",
        caption=(f"{name} in the order {order}: final accuracy per task after the last task, MFT, MFN, MAA, BWT. "
                 + _METRICS_TEXT + " Zero-shot has one stage (MFN = its mean; MFT and BWT undefined). The oracle row "
                 "routes every test sample to its own task's expert (the upper bound of MR-LoRA's router)." + extra
                 + " The kit's tiny model on synthetic analogues is not expected to match the paper's absolute "
                   "accuracies: compare orderings and gaps." + _NONE),
        layout=(f"inferred (paper_numbers.md §3 ({'a' if suite.endswith('dcl') else 'b'})): rows Zero-shot, LoRA-FT, "
                "MoELoRA, replay, other CL methods (O-LoRA, CL-MoE, HiDe-LLaVA, SEFE, DISCO, ...), MR-LoRA, Oracle; "
                f"columns {', '.join(tasks)} + MFT, MFN, MAA, BWT. The kit implements the rows shown."),
        rows=[RowSpec(label, f"{suite}/{m}") for label, m in METHODS],
        columns=[*(final_score(t) for t in tasks), *_metrics()],
    )


DCL = _main("mllmcl_dcl", "Domain Continual Learning (DCL)", DCL_TASKS, "RS -> Med -> AD -> Sci -> Fin", "")
ACL = _main("mllmcl_acl", "Ability Continual Learning (ACL)", ACL_TASKS, "OCR -> Math -> VP -> APP",
            " Math (MathVista needs an LLM judge) and APP (GUI, scored on the EvalAI server) use the kit's rule-based "
            "offline scorers on their synthetic analogues.")


def _router(suite: str, tasks) -> TableSpec:
    tag = suite.split("_")[1]
    return TableSpec(
        id=f"mllmcl_router_{tag}", paper=PAPER,
        title=f"MR-LoRA: router accuracy ({tag.upper()})",
        caption=("Fraction of test samples the MLLM router sends to the expert of their own task (statistics.json "
                 "'router_accuracy' after the last task), per task and overall. An unparsable router answer picks a "
                 "random expert (seeded), as in the release." + _NONE),
        layout="inferred (paper_numbers.md §3 (d)): router accuracy per domain / ability.",
        rows=[RowSpec("MR-LoRA", f"{suite}/mr_lora")],
        columns=[*(statistic("router_accuracy", t, task=t) for t in tasks),
                 statistic("router_accuracy", "overall")],
    )


ROUTER_DCL = _router("mllmcl_dcl", DCL_TASKS)
ROUTER_ACL = _router("mllmcl_acl", ACL_TASKS)

RANK = TableSpec(
    id="mllmcl_lora_rank", paper=PAPER,
    title="MR-LoRA: expert LoRA rank (DCL)",
    caption=("MR-LoRA on DCL with expert LoRA ranks 4, 8, 16 and 32 (alpha = 2 x rank), i.e. the kit's scaled-down "
             "version of the release's rank sweep (8 ... 256 on LLaVA-1.5-7B). " + _METRICS_TEXT
             + " Adapter params: all experts together." + _NONE),
    layout="inferred (paper_numbers.md §3 (e)): a LoRA-rank ablation with ranks 8, 16, 32, 64, 128, 256 in the paper.",
    row_header="expert rank",
    rows=[RowSpec(f"rank {r}", f"mllmcl_dcl/mr_lora__rank{r}") for r in (4, 8, 16, 32)],
    columns=[*_metrics(), adapter_params("total")],
)

SHOTS = TableSpec(
    id="mllmcl_router_shots", paper=PAPER,
    title="MR-LoRA: router training samples per task (DCL)",
    caption=("MR-LoRA on DCL with a router trained on 5, 10, 20 (default) or 50 samples per task. Router accuracy as in "
             "the router table (overall); MFN, MAA and BWT as in the main table." + _NONE),
    layout="inferred (paper_numbers.md §3 (f)): the release sweeps 10 / 20 / 30 / 50 / 100 samples per task.",
    row_header="router samples per task",
    rows=[RowSpec(f"{n} samples", f"mllmcl_dcl/mr_lora__shots{n}") for n in (5, 10, 20, 50)],
    columns=[statistic("router_accuracy", "router accuracy (overall)"), ti_metric("MFN"), ti_metric("MAA"),
             ti_metric("BWT")],
)

TABLES = [DCL, ACL, ROUTER_DCL, ROUTER_ACL, RANK, SHOTS]


def _matrix(suite: str, method: str, label: str) -> FigureSpec:
    run_id = f"{suite}/{method}"
    tag = suite.split("_")[1]
    return FigureSpec(f"mllmcl_matrix_{tag}_{method}", PAPER, f"{tag.upper()} accuracy matrix: {label}",
                      "score on each task (column) after each stage (row)", [run_id],
                      lambda store: plots.matrix_figure(store.run(run_id), f"{label} on {tag.upper()} (measured)"))


FIGURES = [
    _matrix("mllmcl_dcl", "mr_lora", "MR-LoRA"), _matrix("mllmcl_dcl", "lora_ft", "LoRA-FT"),
    _matrix("mllmcl_acl", "mr_lora", "MR-LoRA"), _matrix("mllmcl_acl", "lora_ft", "LoRA-FT"),
    FigureSpec("mllmcl_forgetting_dcl_lora_ft", PAPER, "DCL forgetting curves: LoRA-FT",
               "each domain's score over the stages of sequential fine-tuning", ["mllmcl_dcl/lora_ft"],
               lambda store: plots.forgetting_figure(store.run("mllmcl_dcl/lora_ft"), "LoRA-FT on DCL (measured)")),
    FigureSpec("mllmcl_router_accuracy", PAPER, "MR-LoRA router accuracy per task",
               "fraction of samples routed to their own task's expert after the last task",
               ["mllmcl_dcl/mr_lora", "mllmcl_acl/mr_lora"],
               lambda store: plots.router_accuracy_figure({"DCL": store.run("mllmcl_dcl/mr_lora"),
                                                           "ACL": store.run("mllmcl_acl/mr_lora")},
                                                          "router_accuracy", "MR-LoRA router accuracy (measured)")),
]
