#!/usr/bin/env bash
# cvitkit — one command for set-up, the pipeline, the tests and the benchmarks.
# Run `./reproduce.sh --help` for the full description.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

VENV="${CVITKIT_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
EXTRAS="${CVITKIT_EXTRAS:-notebooks,quant,embed,dev}"
KERNEL_NAME="cvitkit"
STAMP="$VENV/.cvitkit-install"

usage() {
  cat <<'EOF'
Usage:
  ./reproduce.sh [--profile smoke|mini|full] [--only STAGE] [--force]
                 [--data-root DIR] [--model PATH] [--suite NAME]... [--jobs N]
  ./reproduce.sh test  [PYTEST_ARGS...]
  ./reproduce.sh bench [BENCH_ARGS...]
  ./reproduce.sh setup
  ./reproduce.sh stages
  ./reproduce.sh --help

What it does
  Every form first makes sure the environment exists: it creates .venv if missing, installs
  torch first (TORCH_SPEC, default "torch==2.13.0", the CPU wheel), then this project with its
  extras (notebooks, quant, embed, dev), and registers the Jupyter kernel "cvitkit" inside the
  venv. A later run reuses the venv and reinstalls only when pyproject.toml or TORCH_SPEC changed.

  (no command)  Runs the pipeline for a profile: data -> base model -> training of every
                (method, suite) the paper tables need -> evaluation -> tables and figures, each
                stage a papermill-executed notebook. Finished stages are skipped; --force redoes.
  test          Runs the pytest suite inside the venv; extra arguments go to pytest
                (e.g. ./reproduce.sh test -k scorers -x). Slow checks run at smoke size.
  bench         Runs the performance benchmarks in bench/ (writes results/bench/*.csv).
  setup         Only the set-up step.
  stages        Lists the pipeline stages and whether each is built yet.

Options
  --profile P     smoke (minutes, CPU, tests), mini (default; tiny pretrained model on the
                  synthetic analogues, 2-core CPU) or full (a real MLLM on the real benchmarks, GPU).
  --only STAGE    Run a single stage (see `./reproduce.sh stages`).
  --force         Re-run stages even when their outputs exist.
  --data-root DIR Root of the real benchmark files (full profile); see configs/data_layout.md.
  --model PATH    Local folder of a Hugging Face-format MLLM (full profile), e.g. llava-1.5-7b-hf.
  --suite NAME    Restrict the run to one suite (repeatable): coin, mllmcl_dcl, mllmcl_acl,
                  strcvit, ucit, trigap.
  --jobs N        Runs trained side by side, each in its own process (default 0: one per CPU core,
                  up to 4, with cores/N torch threads each; 1 when a GPU is present).
  -h, --help      This text.

Environment variables
  TORCH_SPEC      pip requirement for torch, installed before the project. GPU users, e.g.:
                  TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
  CVITKIT_VENV    Where the virtual environment lives (default: ./.venv).
  PYTHON          Interpreter used to create the venv (default: python3; needs >= 3.10).
  CVITKIT_EXTRAS  Extras to install (default: notebooks,quant,embed,dev).
  HF_HUB_OFFLINE  Always set to 1 by this script: nothing is downloaded at run time.

Examples
  ./reproduce.sh                          # the default mini run on CPU
  ./reproduce.sh --profile smoke          # a few minutes, what CI exercises
  ./reproduce.sh test                     # the test suite
  ./reproduce.sh --profile full --data-root /data/cvit --model /models/llava-1.5-7b-hf
EOF
}

log() { printf '[reproduce] %s\n' "$*" >&2; }
die() { printf '[reproduce] error: %s\n' "$*" >&2; exit 2; }

install_fingerprint() {
  # Reinstall whenever the dependency declaration or the torch choice changes.
  { cat "$ROOT/pyproject.toml"; printf '%s\n%s\n' "$TORCH_SPEC" "$EXTRAS"; } | sha256sum | cut -d' ' -f1
}

setup_env() {
  local want have
  want="$(install_fingerprint)"
  if [[ -x "$VENV/bin/python" && -f "$STAMP" ]]; then
    have="$(cat "$STAMP")"
    if [[ "$have" == "$want" ]]; then
      return 0
    fi
    log "pyproject.toml or TORCH_SPEC changed: updating the environment in $VENV"
  fi
  local t0=$SECONDS
  if [[ ! -x "$VENV/bin/python" ]]; then
    command -v "$PYTHON_BIN" >/dev/null || die "no '$PYTHON_BIN' on PATH; install Python >= 3.10 or set PYTHON=/path/to/python3"
    "$PYTHON_BIN" - <<'PY' || die "Python >= 3.10 is required (set PYTHON=/path/to/python3.11)"
import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
    log "creating the virtual environment $VENV"
    "$PYTHON_BIN" -m venv "$VENV"
  fi
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  local pip_log="$VENV/install.log"
  : > "$pip_log"
  log "installing torch first: $TORCH_SPEC (pip output in $pip_log)"
  # shellcheck disable=SC2086  # TORCH_SPEC may carry pip options such as --index-url
  "${pip[@]}" install -q $TORCH_SPEC >>"$pip_log" 2>&1 \
    || { tail -n 30 "$pip_log" >&2; die "installing '$TORCH_SPEC' failed (log above; full log: $pip_log)"; }
  log "installing cvitkit with extras [$EXTRAS]"
  "${pip[@]}" install -q -e ".[$EXTRAS]" >>"$pip_log" 2>&1 \
    || { tail -n 30 "$pip_log" >&2; die "installing the project failed (log above; full log: $pip_log)"; }
  if "$VENV/bin/python" -c "import ipykernel" 2>/dev/null; then
    "$VENV/bin/python" -m ipykernel install --sys-prefix --name "$KERNEL_NAME" \
      --display-name "cvitkit (venv)" >/dev/null
  fi
  echo "$want" > "$STAMP"
  log "environment ready in $((SECONDS - t0)) s"
}

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# A user's pip config must not redirect torch to a CUDA build behind our back.
export PIP_DISABLE_PIP_VERSION_CHECK=1

cmd="run"
case "${1:-}" in
  -h|--help|help) usage; exit 0 ;;
  test|bench|setup|stages) cmd="$1"; shift ;;
esac

case "$cmd" in
  setup)
    [[ $# -eq 0 ]] || die "'setup' takes no arguments (got: $*)"
    setup_env
    ;;
  test)
    setup_env
    cd "$ROOT"
    set +e
    "$VENV/bin/python" -m pytest "$@"
    rc=$?
    set -e
    exit "$rc"
    ;;
  bench)
    setup_env
    exec "$VENV/bin/python" -m cvitkit.bench "$@"
    ;;
  stages)
    setup_env
    exec "$VENV/bin/python" -m cvitkit.pipeline stages "$@"
    ;;
  run)
    # Validate arguments before the (slow) set-up so a typo fails at once.
    args=()
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --profile|--only|--data-root|--model|--suite|--jobs)
          [[ $# -ge 2 && "${2:0:2}" != "--" ]] || die "$1 needs a value (see --help)"
          args+=("$1" "$2"); shift 2 ;;
        --profile=*|--only=*|--data-root=*|--model=*|--suite=*|--jobs=*)
          args+=("${1%%=*}" "${1#*=}"); shift ;;
        --force) args+=("--force"); shift ;;
        *) die "unknown argument '$1' (see ./reproduce.sh --help)" ;;
      esac
    done
    setup_env
    exec "$VENV/bin/python" -m cvitkit.pipeline run "${args[@]}"
    ;;
esac
