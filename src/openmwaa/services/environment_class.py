"""EnvironmentClass as MWAA defines it: the classes, and the capacity bounds and defaults of each.

Sources (each rule below names its own):

- botocore's MWAA model (``botocore/data/mwaa/2020-07-01/service-2.json``), the documentation
  strings of ``EnvironmentClass``, ``MinWebservers``, ``MaxWebservers``, ``Schedulers``,
  ``MinWorkers`` and ``MaxWorkers``, and the shapes' own ``min``/``max``.
- MWAA's user guide: "Configuring the Amazon MWAA environment class" (environment-class.html),
  "Configuring Amazon MWAA worker automatic scaling" (mwaa-autoscaling.html) and the FAQ
  (mwaa-faqs.html, "Can I specify more than 25 Apache Airflow workers?").

MWAA does not publish the text of these errors; they read like AWS's other constraint
violations (and like the model validator's, ``wire.validation``): ``1 validation error
detected: Value 'foo' at 'environmentClass' failed to satisfy constraint: ...``. A count the
request left out is the default (create) or the environment's current value (update), and the
message says so, so the caller knows which member to send.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from openmwaa.errors import ValidationError
from openmwaa.runtime.airflow_config import CLASS_TASK_CONCURRENCY, DEFAULT_ENVIRONMENT_CLASS

#: Model docs of EnvironmentClass: "Valid values: mw1.micro, mw1.small, mw1.medium, mw1.large,
#: mw1.xlarge, and mw1.2xlarge." (the model itself types it as a free string of 1-1024 chars).
ENVIRONMENT_CLASSES: Final = tuple(CLASS_TASK_CONCURRENCY)
MICRO: Final = "mw1.micro"
#: How much of a bad value a message repeats (the model allows classes of 1024 characters).
_MAX_SHOWN: Final = 256
#: The count members, in the order errors are reported.
COUNT_MEMBERS: Final = ("MinWebservers", "MaxWebservers", "Schedulers", "MinWorkers", "MaxWorkers")


@dataclass(frozen=True)
class Capacity:
    """Inclusive bounds of each count member, and what CreateEnvironment fills in."""

    bounds: Mapping[str, tuple[int, int]]
    defaults: Mapping[str, int]


_LARGER = Capacity(
    bounds={
        # Model docs of MinWebservers/MaxWebservers: "For environments larger than mw1.micro,
        # accepts values from 2 to 5. Defaults to 2 ...".
        "MinWebservers": (2, 5),
        "MaxWebservers": (2, 5),
        # Model docs of CreateEnvironmentInput.Schedulers: "v2 - For environments larger than
        # mw1.micro, accepts values from 2 to 5. Defaults to 2 ..." (the shape's max is 5 too).
        "Schedulers": (2, 5),
        # The shapes' min is 1. The FAQ: up to 25 workers (more only by a quota increase, which
        # openmwaa has no way to grant).
        "MinWorkers": (1, 25),
        "MaxWorkers": (1, 25),
    },
    # MaxWorkers 10: MWAA's default maximum worker count; MinWorkers 1: model docs of MaxWorkers,
    # "... leaving the one worker that is included with your environment".
    defaults={"MinWebservers": 2, "MaxWebservers": 2, "Schedulers": 2, "MinWorkers": 1, "MaxWorkers": 10},
)
_MICRO = Capacity(
    bounds={
        # Model docs: web servers and schedulers default "to 1" for mw1.micro, and only larger
        # classes accept 2 to 5. The guide's class table gives mw1.micro one web server and one
        # combined worker-and-scheduler container, and says "mw1.micro does not support
        # auto-scaling": so exactly one of each, and one worker.
        "MinWebservers": (1, 1),
        "MaxWebservers": (1, 1),
        "Schedulers": (1, 1),
        "MinWorkers": (1, 1),
        "MaxWorkers": (1, 1),
    },
    defaults={"MinWebservers": 1, "MaxWebservers": 1, "Schedulers": 1, "MinWorkers": 1, "MaxWorkers": 1},
)
#: Model docs of MinWorkers/MaxWorkers (MWAA scales workers up to MaxWorkers and back down to
#: MinWorkers) and of MinWebservers/MaxWebservers (the same for web servers): min <= max.
_ORDERED: Final = (("MinWebservers", "MaxWebservers"), ("MinWorkers", "MaxWorkers"))


def capacity(environment_class: str) -> Capacity:
    """The bounds and defaults of a valid class."""
    if environment_class not in CLASS_TASK_CONCURRENCY:
        raise ValueError(f"{environment_class!r} is not an environment class")
    return _MICRO if environment_class == MICRO else _LARGER


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with the class (MWAA's default: mw1.small) and each count it leaves out filled in.

    An invalid class gets no counts: :func:`check` refuses it anyway.
    """
    out = dict(config)
    out.setdefault("EnvironmentClass", DEFAULT_ENVIRONMENT_CLASS)
    if out["EnvironmentClass"] in CLASS_TASK_CONCURRENCY:
        for member, value in capacity(str(out["EnvironmentClass"])).defaults.items():
            if out.get(member) is None:
                out[member] = value
    return out


def check(config: Mapping[str, Any], *, given: Collection[str], fallback: str) -> None:
    """Raise ValidationError unless ``config``'s class and counts are what MWAA accepts.

    ``config`` is the whole configuration the request would put in force (defaults or the
    environment's current values merged with the request's members); ``given`` names the
    members the request set; ``fallback`` says where the others come from ("the default",
    "the current value").
    """
    messages: list[str] = []

    def violation(member: str, value: Any, constraint: str) -> None:
        path = member[:1].lower() + member[1:]
        origin = "" if member in given else f" ({fallback})"
        shown = str(value) if len(str(value)) <= _MAX_SHOWN else str(value)[:_MAX_SHOWN] + "..."
        messages.append(f"Value '{shown}' at '{path}'{origin} failed to satisfy constraint: {constraint}")

    given_class = config.get("EnvironmentClass")
    environment_class = DEFAULT_ENVIRONMENT_CLASS if given_class is None else str(given_class)
    if environment_class not in CLASS_TASK_CONCURRENCY:
        violation(
            "EnvironmentClass",
            environment_class,
            f"Member must satisfy enum value set: [{', '.join(ENVIRONMENT_CLASSES)}]",
        )
    else:
        limits = capacity(environment_class)
        counts = {m: limits.defaults[m] if config.get(m) is None else int(config[m]) for m in COUNT_MEMBERS}
        for member in COUNT_MEMBERS:
            low, high = limits.bounds[member]
            value = counts[member]
            if value < low:
                violation(
                    member,
                    value,
                    f"Member must have value greater than or equal to {low} for environment class "
                    f"{environment_class}",
                )
            elif value > high:
                violation(
                    member,
                    value,
                    f"Member must have value less than or equal to {high} for environment class "
                    f"{environment_class}",
                )
        for low_member, high_member in _ORDERED:
            if counts[low_member] > counts[high_member]:
                violation(
                    low_member,
                    counts[low_member],
                    f"Member must have value less than or equal to {high_member} ({counts[high_member]})",
                )
    if messages:
        noun = "error" if len(messages) == 1 else "errors"
        raise ValidationError(f"{len(messages)} validation {noun} detected: {'; '.join(messages)}")
