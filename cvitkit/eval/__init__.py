"""Evaluation: scorers (``scorers``), continual-learning metrics (``metrics``) and generation.

Importing this package loads only the pure-Python scorers and the numpy metrics; modules that need
torch (generation) are imported explicitly by their users (``from cvitkit.eval.evaluate import ...``).
"""

from cvitkit.eval.metrics import (
    AccuracyMatrix,
    average_performance,
    bwt,
    forgetting,
    fwt,
    maa,
    maf,
    map_,
    mean_average_forgetting,
    mean_average_performance,
    mfn,
    mft,
    summarise,
    summarise_stream,
)
from cvitkit.eval.scorers import (
    ScoreResult,
    Scorer,
    available_scorers,
    describe_scorers,
    get_scorer,
    register,
    score,
)

__all__ = [
    "AccuracyMatrix", "ScoreResult", "Scorer", "available_scorers", "average_performance", "bwt",
    "describe_scorers", "forgetting", "fwt", "get_scorer", "maa", "maf", "map_", "mean_average_forgetting",
    "mean_average_performance", "mfn", "mft", "register", "score", "summarise", "summarise_stream",
]
