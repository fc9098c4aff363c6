"""cvitkit: a reproducibility kit for continual visual instruction tuning of multimodal LLMs.

The public API is small on purpose; heavy modules (torch, transformers, peft) are imported only by
the sub-packages that need them, so ``import cvitkit`` stays cheap.

Sub-packages
------------
models    tiny LLaVA builder, real-model loading (optionally 4-bit), LoRA target selection
data      LLaVA-format I/O, synthetic analogue benchmarks, suites, streams, collation
adapters  mixture-of-LoRA-expert layers over any base linear layer (4-bit included)
routers   gates, task selectors and the routers of the four methods
methods   one continual-learning strategy per file (baselines and the four papers' methods)
eval      generation, scorers and continual-learning metrics
report    table specifications, plots and provenance
"""

from cvitkit.errors import ConfigError, CvitkitError, DataError, ModelPathError

__version__ = "0.1.0"

__all__ = ["ConfigError", "CvitkitError", "DataError", "ModelPathError", "__version__"]
