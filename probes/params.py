"""Validate a request's parameters and filters against a probe spec; turn them into numbers.

Nothing from a request reaches the C as text: integers are range-checked, choices become their
index, booleans 0/1, a comm becomes its bytes, a tracepoint name is checked against tracefs and
used only to attach (never compiled). Filters and `runtime: true` parameters become a
`RuntimeConfig`, written into the probe's `bs_config` map at each run (probes/common.h); only
the other parameters become `-D<define>=<number>`, and with them the compiled object's identity.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from probes.engine.tracefs import IDENT_RE, tracepoint_exists
from probes.models import COMM_MAX_LEN, PID_MAX, ParamValue, ProbeFilters
from probes.spec import MAX_RUNTIME_PARAMS, ParamSpec, ProbeSpec


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


def _number(param: ParamSpec, value: ParamValue) -> int:
    if param.type == "choice":
        return param.choices.index(str(value))
    if param.type == "bool":
        return 1 if value else 0
    return int(value)


def runtime_slots(spec: ProbeSpec) -> dict[str, int]:
    """The `bs_config.params` slot of each `runtime: true` parameter, in spec order."""
    runtime = [name for name, param in spec.params.items() if param.runtime]
    return {name: slot for slot, name in enumerate(runtime)}


def param_defines(spec: ProbeSpec, values: dict[str, ParamValue]) -> list[str]:
    """`-D<define>=<number>` for compile-time parameters; `-D<define>=bs_param(<slot>)` for
    run-time ones (the same for every value: the macro reads the config map)."""
    slots = runtime_slots(spec)
    defines = []
    for name, param in spec.params.items():
        if param.define is None:
            continue
        if name in slots:
            defines.append(f"-D{param.define}=bs_param({slots[name]})")
        else:
            defines.append(f"-D{param.define}={_number(param, values[name])}")
    return defines


class RuntimeConfig(BaseModel):
    """One run's filters and run-time parameters, as the `bs_config` map holds them (numbers
    only; the probe's process adds its own pid and arms the map)."""

    pid: int = Field(default=0, ge=0, le=PID_MAX, description="0: any process.")
    comm: bytes = Field(default=b"", max_length=COMM_MAX_LEN, description="b'': any comm.")
    params: list[int] = Field(default_factory=list, max_length=MAX_RUNTIME_PARAMS)


def runtime_config(
    spec: ProbeSpec, values: dict[str, ParamValue], filters: ProbeFilters
) -> RuntimeConfig:
    """The map values of a validated request: filters and `runtime: true` parameters by slot."""
    slots = runtime_slots(spec)
    params = [0] * len(slots)
    for name, slot in slots.items():
        params[slot] = _number(spec.params[name], values[name])
    return RuntimeConfig(
        pid=filters.pid or 0,
        comm=filters.comm.encode("ascii") if filters.comm is not None else b"",
        params=params,
    )
