"""Stage settings an evaluation runs: one (tau1, tau2) pair each (and the VAE-focused steps' reading), with a
readable name.

Plain Python (the CLI parses ``--taus`` before torch is imported).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..request import CACHE_MODES, DEFAULT_TAU1, DEFAULT_TAU2
from ..stages.schedule import VaeFocusedReading  # plain Python, like this module


@dataclass(frozen=True)
class StageSetting:
    """One point of the stage balance: steps with t >= tau1 see the MLLM only, t < tau2 are VAE-focused."""

    tau1: float
    tau2: float
    ramp: bool = False  # the smooth variant: reference attention weight ramps across the joint band
    reading: str = "null"  # below tau2: "null" (empty instruction) or "text" (the instruction read alone)
    cache: str = "none"  # the step cache the generations run with (``request.CACHE_MODES``)

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau2 <= self.tau1 <= 1.0:
            raise ValueError(f"stage thresholds need 0 <= tau2 <= tau1 <= 1 (got {self.tau1:g},{self.tau2:g})")
        if self.reading not in READINGS:
            raise ValueError(f"the VAE-focused reading must be one of {', '.join(READINGS)} (got {self.reading!r})")
        if self.cache not in CACHE_MODES:
            raise ValueError(f"the cache mode must be one of {', '.join(CACHE_MODES)} (got {self.cache!r})")

    @property
    def name(self) -> str:
        """The key in the JSON report, e.g. ``"0.95/0.85"``."""
        return (f"{self.tau1:g}/{self.tau2:g}" + (" ramp" if self.ramp else "")
                + (" text" if self.reading == "text" else "") + ("" if self.cache == "none" else f" {self.cache}"))

    @property
    def label(self) -> str:
        """What the figure and the table call it."""
        special = {(0.0, 0.0): "MLLM only", (1.0, 0.0): "MLLM+VAE every step", (1.0, 1.0): "VAE only",
                   (DEFAULT_TAU1, DEFAULT_TAU2): "paper default"}
        extra = "smooth ramp" if self.ramp else special.get((self.tau1, self.tau2))
        if self.reading == "text":
            extra = f"{extra}, instruction text kept" if extra else "instruction text kept below tau2"
        if self.cache != "none":
            extra = f"{extra}, {self.cache} cache" if extra else f"{self.cache} cache"
        return f"{self.name} ({extra})" if extra else self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "label": self.label, "tau1": self.tau1, "tau2": self.tau2, "ramp": self.ramp,
                "reading": self.reading, "cache": self.cache}


READINGS = tuple(reading.value for reading in VaeFocusedReading)
DEFAULT_SETTING = StageSetting(DEFAULT_TAU1, DEFAULT_TAU2)

# The trade-off grid: from "MLLM only throughout" through the paper's default to "MLLM + VAE at every step".
SWEEP = (
    StageSetting(0.0, 0.0),
    StageSetting(1.0, 0.0),
    StageSetting(0.97, 0.90),
    StageSetting(0.95, 0.85),
    StageSetting(0.85, 0.70),
    StageSetting(0.7, 0.5),
)


def parse_taus(text: str) -> StageSetting:
    """``"0.95,0.85"`` -> ``StageSetting(0.95, 0.85)``, ``"1,1,text"`` -> the text reading, a step cache mode
    last (``"0.95,0.85,text,taylorseer"``) -> generated with that cache; a one-line ``ValueError`` otherwise."""
    parts = [p.strip() for p in str(text).split(",")]
    wanted = f"--taus wants 'tau1,tau2[,text][,CACHE]' (got {text!r})"
    cache = parts.pop() if len(parts) > 2 and parts[-1] in CACHE_MODES else "none"
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in READINGS):
        raise ValueError(wanted)
    try:
        tau1, tau2 = (float(p) for p in parts[:2])
    except ValueError:
        raise ValueError(wanted) from None
    return StageSetting(tau1, tau2, reading=parts[2] if len(parts) == 3 else "null", cache=cache)


def unique_settings(settings) -> list[StageSetting]:
    """``settings`` in order, each once."""
    seen: dict[str, StageSetting] = {}
    for s in settings:
        seen.setdefault(s.name, s)
    return list(seen.values())
