"""Units institutions report in, their QUDT identifiers, and how to convert between them.

Conversion is affine within one dimension: value_in_base = value * factor + offset, so
value_in_b = value_in_a * (factor_a / factor_b) + (offset_a - offset_b) / factor_b.
A unit outside this table, or two units of different dimensions, is refused, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from rdflib import URIRef

from knowledge_graph.errors import KGError
from knowledge_graph.vocab import FK, UNIT


@dataclass(frozen=True)
class Unit:
    key: str
    iri: URIRef
    dimension: str
    factor: float  # in the dimension's base unit
    offset: float = 0.0  # base = value * factor + offset (temperatures)


_UNITS = [
    Unit("month", UNIT.MO, "time", 1.0),
    Unit("year", UNIT.YR, "time", 12.0),
    Unit("week", UNIT.WK, "time", 12.0 / 52.1775),
    Unit("day", UNIT.DAY, "time", 12.0 / 365.25),
    Unit("Deutsche Mark", FK.DeutscheMark, "currency-dem", 1.0),
    Unit("thousand Deutsche Mark", FK.KiloDeutscheMark, "currency-dem", 1000.0),
    Unit("euro", UNIT["CCY_EUR"], "currency-dem", 1.95583),  # the fixed DEM/EUR rate of 1999
    Unit("thousand euro", FK.KiloEuro, "currency-dem", 1955.83),
    Unit("percent", UNIT.PERCENT, "ratio", 1.0),
    Unit("fraction", UNIT.FRACTION, "ratio", 100.0),
    Unit("count", UNIT.NUM, "count", 1.0),
    Unit("intensity (0-16)", FK.Intensity16, "intensity", 1.0),
    Unit("intensity (0-255)", FK.Intensity255, "intensity", 16.0 / 255.0),
    Unit("1", UNIT.UNITLESS, "unitless", 1.0),
    Unit("millimetre", UNIT.MilliM, "length", 1.0),
    Unit("centimetre", UNIT.CentiM, "length", 10.0),
    Unit("micrometre", UNIT.MicroM, "length", 0.001),
    Unit("kilogram", UNIT.KiloGM, "mass", 1.0),
    Unit("gram", UNIT.GM, "mass", 0.001),
    Unit("pound", UNIT.LB, "mass", 0.45359237),
    Unit("degree Celsius", UNIT.DEG_C, "temperature", 1.0),
    Unit("kelvin", UNIT.K, "temperature", 1.0, -273.15),
    Unit("degree Fahrenheit", UNIT.DEG_F, "temperature", 5.0 / 9.0, -32.0 * 5.0 / 9.0),
]
UNITS: dict[str, Unit] = {u.key: u for u in _UNITS}
_BY_IRI: dict[URIRef, Unit] = {u.iri: u for u in _UNITS}


def unit(key: str | None) -> Unit:
    """A unit by name; no unit means a dimensionless number."""
    if key is None or key == "":
        return UNITS["1"]
    try:
        return UNITS[key]
    except KeyError:
        known = ", ".join(sorted(UNITS))
        raise KGError(f"unknown unit {key!r}; use one of: {known}") from None


def by_iri(iri: URIRef) -> Unit:
    try:
        return _BY_IRI[iri]
    except KeyError:
        raise KGError(f"unknown unit {iri}; use a unit from knowledge_graph.units") from None


def conversion(source: Unit, target: Unit) -> tuple[float, float]:
    """(scale, offset) with value_in_target = value_in_source * scale + offset."""
    if source.dimension != target.dimension:
        raise KGError(
            f"cannot convert {source.key!r} to {target.key!r} (different kinds of quantity); "
            "fix the unit in the card"
        )
    return source.factor / target.factor, (source.offset - target.offset) / target.factor


def scale_between(source: Unit, target: Unit) -> float:
    """Multiply a value in `source` by this to get it in `target` (units without offset)."""
    scale, offset = conversion(source, target)
    if offset:
        raise KGError(
            f"{source.key!r} and {target.key!r} differ by an offset, not only a factor; "
            "use knowledge_graph.units.conversion"
        )
    return scale
