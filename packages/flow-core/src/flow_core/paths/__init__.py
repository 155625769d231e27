"""Probability paths between the source (t = 0) and the data (t = 1).

:mod:`flow_core.paths.affine` holds the affine paths x_t = α_t·x1 + σ_t·x0 (linear, cosine/VP,
polynomial and variance-exploding schedules) with conversions among velocity, data, noise and
score predictions; :mod:`flow_core.paths.linear` the linear path x_t = (1 − t)·x0 + t·x1; and
:mod:`flow_core.paths.transform` re-expresses a trained velocity field on another schedule.
"""

from flow_core.paths.affine import (
    PREDICTION_KINDS,
    SCHEDULES,
    AffinePath,
    CosineSchedule,
    LinearSchedule,
    PolynomialSchedule,
    Schedule,
    VESchedule,
    expand_time,
    get_schedule,
)
from flow_core.paths.linear import LinearPath
from flow_core.paths.transform import ScheduleTransformedVelocity, to_vp

__all__ = [
    "PREDICTION_KINDS",
    "SCHEDULES",
    "AffinePath",
    "CosineSchedule",
    "LinearPath",
    "LinearSchedule",
    "PolynomialSchedule",
    "Schedule",
    "ScheduleTransformedVelocity",
    "VESchedule",
    "expand_time",
    "get_schedule",
    "to_vp",
]
