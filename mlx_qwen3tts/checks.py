"""One option's value check: an error that names the option, says what it takes, and what to do.

Shared by `SpeechOptions` and `SamplingConfig.resolve`, so a value is judged by one rule
whichever door it came in by. `OptionError.option` names the option, for callers that
answer with a field name (the server's 400s).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from numbers import Integral, Real


class OptionError(ValueError):
    """A bad value for one option; `option` is its name."""

    def __init__(self, option: str, message: str):
        super().__init__(message)
        self.option = option


class OptionTypeError(OptionError, TypeError):
    """A value of the wrong type for one option (a TypeError and, like every option error, a ValueError)."""


def show(value) -> str:
    """A value as the message quotes it: JSON where it can be (what the server's clients sent), else repr."""
    try:
        return json.dumps(value)[:80]
    except (TypeError, ValueError):
        return repr(value)[:80]


def _refuse(name: str, takes: str, value, hint: str, kind: type[OptionError]) -> OptionError:
    message = f"{name} must be {takes}, got {show(value)}"
    return kind(name, f"{message}: {hint}" if hint else message)


def check_int(name: str, value, low: int, high: int | None, takes: str, hint: str = "") -> int:
    """An integer in [low, high] (high None: no upper bound); bools and floats are refused."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise _refuse(name, takes, value, hint, OptionTypeError)
    if value < low or (high is not None and value > high):
        raise _refuse(name, takes, value, hint, OptionError)
    return int(value)


def check_float(name: str, value, low: float, high: float | None, takes: str, hint: str = "", *,
                low_open: bool = False) -> float:
    """A finite number in [low, high] ((low, high] with `low_open`); ints are welcome, bools not."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _refuse(name, takes, value, hint, OptionTypeError)
    number = float(value)
    too_low = number <= low if low_open else number < low
    if not math.isfinite(number) or too_low or (high is not None and number > high):
        raise _refuse(name, takes, value, hint, OptionError)
    return number


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise _refuse(name, "True or False", value, "", OptionTypeError)
    return value


def check_text(name: str, value, hint: str = "") -> str | None:
    """None or a string."""
    if value is not None and not isinstance(value, str):
        raise _refuse(name, "a string (or None)", value, hint, OptionTypeError)
    return value


def check_choice(name: str, value, choices: Sequence[tuple[str, str]]) -> str:
    """One of `choices` ((value, what it means) pairs), named in the message with their meaning."""
    names = [choice for choice, _ in choices]
    if isinstance(value, str) and value in names:
        return value
    said = [f"{choice} ({meaning})" for choice, meaning in choices]
    listing = ", ".join(said[:-1]) + f" or {said[-1]}"
    kind = OptionError if isinstance(value, str) else OptionTypeError
    raise kind(name, f"unsupported {name} {show(value)}; choose {listing}")
