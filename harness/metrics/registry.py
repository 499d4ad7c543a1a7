"""The metric families zeg-eval knows, in the order they are evaluated and reported.

Adding a family: write its module (a `Family` subclass, see harness.metrics.family) and add one
line here.
"""
from __future__ import annotations

from harness.metrics.boundary import BoundaryFamily
from harness.metrics.family import Family
from harness.metrics.image_level import ImageLevelFamily
from harness.metrics.miss_attribution import MissAttributionFamily
from harness.metrics.occlusion import OcclusionFamily
from harness.metrics.segment_level import SegmentLevelFamily
from harness.metrics.size import SizeFamily
from harness.metrics.standard import StandardFamily

FAMILIES: dict[str, Family] = {family.name: family for family in (
    StandardFamily(),
    BoundaryFamily(),
    SizeFamily(),
    OcclusionFamily(),
    ImageLevelFamily(),
    SegmentLevelFamily(),
    MissAttributionFamily(),
)}


def family_tables() -> tuple[str, ...]:
    """Every record table a family writes rows to, in a fixed order (besides `pixel` and `images`)."""
    out: list[str] = []
    for family in FAMILIES.values():
        out += [t for t in family.tables if t not in out]
    return tuple(out)
