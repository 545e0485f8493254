"""Hypothesis settings for brownie state machines."""
from __future__ import annotations


def stateful_settings(max_examples: int, step_count: int) -> dict:
    """Hypothesis settings for a brownie state machine. Under `--coverage` (`make coverage`) every
    transaction and call is traced and evaluated in Python, about 100x slower, so the example count
    drops to a quarter there: coverage needs the paths reached, the property search runs in full in
    `make test`.

    The `data_too_large` health check is suppressed: a state machine of 25-30 steps draws many choices per
    step, and hypothesis sometimes discards over-long runs while generating (seen once in a full run). That
    check is about the generator's efficiency, not the property; discarded runs are simply not examples."""
    from brownie._config import CONFIG
    from hypothesis import HealthCheck

    if CONFIG.argv.get("coverage"):
        max_examples = max(3, max_examples // 4)
    return {"max_examples": max_examples, "stateful_step_count": step_count,
            "suppress_health_check": [HealthCheck.data_too_large]}
