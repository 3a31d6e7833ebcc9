"""hubhelpers: the tested helper package of the llm-hub course.

Lesson modules are named by topic (`world`, `models`, `training`, `lora`, `retrieval`…): import the one a lesson
uses, ``from hubhelpers import retrieval``. Notebooks record their figures with ``hubhelpers.results`` and check
their parameters with ``hubhelpers.params``; the course machinery (runner, bench, conventions) is
``hubhelpers.tooling``, which learners never need.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"


def _not_the_cpu_kernel_notice(record: logging.LogRecord) -> bool:
    """False for bitsandbytes' notice that it could not download an optional CPU kernel (it falls back to its own)."""
    return not record.getMessage().startswith("Failed to load CPU gemm_4bit_forward")


# bitsandbytes logs that notice at import on CPUs with AVX512-BF16: it teaches nothing and nothing is missing,
# so only that one message of that one logger is dropped (the logger exists before bitsandbytes is imported).
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(_not_the_cpu_kernel_notice)
