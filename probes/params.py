"""Validate a request's parameters and filters against a probe spec; turn them into -D defines.

Nothing from a request reaches the C as text: integers are range-checked, choices become their
index, a comm becomes a brace list of byte values, a tracepoint name is checked against tracefs
and used only to attach (never compiled).
"""

from __future__ import annotations

from probes.models import ParamValue, ProbeFilters
from probes.spec import ParamSpec, ProbeSpec
from probes.tracefs import IDENT_RE, tracepoint_exists


class ProbeRequestError(ValueError):
    """A request that cannot run; `str()` says why, fit for the model and the user."""


def _validate_one(name: str, spec: ParamSpec, value: ParamValue) -> ParamValue:
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ProbeRequestError(f"parameter {name} must be true or false, got {value!r}")
    if spec.type == "int":
        if isinstance(value, bool):
            raise ProbeRequestError(f"parameter {name} must be an integer, got {value!r}")
        try:
            number = int(value) if not isinstance(value, float) or value.is_integer() else None
        except ValueError:
            number = None
        if number is None:
            raise ProbeRequestError(f"parameter {name} must be an integer, got {value!r}")
        assert spec.min is not None and spec.max is not None
        if not spec.min <= number <= spec.max:
            raise ProbeRequestError(
                f"parameter {name}={number} is out of range [{spec.min}, {spec.max}]"
            )
        return number
    if spec.type == "choice":
        if not isinstance(value, str) or value not in spec.choices:
            raise ProbeRequestError(
                f"parameter {name} must be one of {', '.join(spec.choices)}, got {value!r}"
            )
        return value
    # tracepoint: `category/name` or `category:name`, both identifiers, existing here
    if not isinstance(value, str):
        raise ProbeRequestError(f"parameter {name} must be a tracepoint name, got {value!r}")
    text = value.strip().removeprefix("tracepoint:")
    sep = "/" if "/" in text else ":"
    category, _, event = text.partition(sep)
    if not (IDENT_RE.match(category) and IDENT_RE.match(event)):
        raise ProbeRequestError(
            f"parameter {name}={value!r}: category and name must match ^[a-z0-9_]+$"
        )
    if not tracepoint_exists(category, event):
        raise ProbeRequestError(f"tracepoint {category}/{event} does not exist on this host")
    return f"{category}:{event}"


def validate_params(spec: ProbeSpec, given: dict[str, ParamValue]) -> dict[str, ParamValue]:
    """Every parameter of the spec with a validated value (defaults filled in)."""
    unknown = sorted(set(given) - set(spec.params))
    if unknown:
        known = ", ".join(sorted(spec.params)) or "none"
        raise ProbeRequestError(
            f"probe {spec.name} has no parameter {', '.join(unknown)} (known: {known})"
        )
    values: dict[str, ParamValue] = {}
    for name, param in spec.params.items():
        if name in given:
            values[name] = _validate_one(name, param, given[name])
        elif param.default is not None:
            values[name] = _validate_one(name, param, param.default)
        else:
            raise ProbeRequestError(
                f"probe {spec.name} needs parameter {name}: {param.description}"
            )
    return values


def param_defines(spec: ProbeSpec, values: dict[str, ParamValue]) -> list[str]:
    defines = []
    for name, param in spec.params.items():
        if param.define is None:
            continue
        value = values[name]
        if param.type == "choice":
            number = param.choices.index(str(value))
        elif param.type == "bool":
            number = 1 if value else 0
        else:
            number = int(value)
        defines.append(f"-D{param.define}={number}")
    return defines


def filter_defines(filters: ProbeFilters) -> list[str]:
    """`FILTER_PID=<int>` and `FILTER_COMM={b0,b1,...,0}` (bytes, never text)."""
    defines = []
    if filters.pid is not None:
        defines.append(f"-DFILTER_PID={int(filters.pid)}")
    if filters.comm is not None:
        data = filters.comm.encode("ascii")
        defines.append("-DFILTER_COMM={" + ",".join(str(b) for b in data) + ",0}")
        defines.append(f"-DFILTER_COMM_LEN={len(data) + 1}")
    return defines
