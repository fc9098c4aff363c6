"""Conversation templates.

The kit renders prompts itself so that the tiny model and a real LLaVA-1.5 see the same layout
(``vicuna_v1``: roles USER/ASSISTANT, turns separated by a space, assistant turns closed by ``</s>``):

    [system ]USER: <image>\\n{question} ASSISTANT: {answer}</s>USER: ... ASSISTANT:

The same layout is installed as the processor's Jinja ``chat_template`` (:data:`VICUNA_V1_JINJA`), so
``processor.apply_chat_template`` agrees with :func:`render_vicuna_v1` (a test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

#: System prompt of LLaVA-1.5 (vicuna_v1). Tiny models use none to keep sequences short.
LLAVA_SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

EOS = "</s>"

VICUNA_V1_JINJA = (
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}{{ m['content'] + ' ' }}"
    "{%- elif m['role'] == 'user' -%}{{ 'USER: ' + m['content'] + ' ' }}"
    "{%- else -%}{{ 'ASSISTANT: ' + m['content'] + '" + EOS + "' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'ASSISTANT:' }}{%- endif -%}"
)


def render_vicuna_v1(turns: Sequence[tuple[str, str]], system: str = "", add_generation_prompt: bool = False) -> str:
    """Render ``[(role, text), ...]`` (role ``user`` or ``assistant``) in the vicuna_v1 layout."""
    parts = [f"{system} "] if system else []
    for role, text in turns:
        if role == "user":
            parts.append(f"USER: {text} ")
        elif role == "assistant":
            parts.append(f"ASSISTANT: {text}{EOS}")
        else:
            raise ValueError(f"unknown role {role!r}; expected 'user' or 'assistant'")
    if add_generation_prompt:
        parts.append("ASSISTANT:")
    return "".join(parts)
