"""The ``lut`` perturbation: an object graded by a 3D LUT (``.cube``) from a folder.

* :class:`LutConfig`: the blend strength range and the redraw rule of the family;
* :class:`LutLibrary` / :func:`lut_library`: the ``*.cube`` files of a folder, read once per
  process (cached by the folder's resolved path and its files' names, sizes and
  modification times), drawn uniformly by name order;
* :class:`LutGrade`: the op ``{"op": "lut", "file": NAME, "sha256": HASH, "strength": s}``:
  ``out = round((1 - s) * x + s * 255 * lut(x / 255))`` per pixel (trilinear, see
  :mod:`harmonykit.lut`; one rounding, clipped to ``0..255``). The recipe records the file
  name and its content hash (:attr:`harmonykit.lut.CubeLut.sha256`), not the table, so
  replaying needs the folder: :meth:`LutGrade.bind` loads the LUT by name and refuses a
  file whose hash differs.

The family-level sampling (which object, redraws) is in
:mod:`harmonykit.data.perturb.families`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from harmonykit.data.perturb.ops import Op, check_image, check_number
from harmonykit.errors import ConfigError
from harmonykit.imageops import round_uint8
from harmonykit.lut import CubeLut, apply_lut, read_cube

__all__ = ["LutConfig", "LutLibrary", "LutGrade", "lut_library"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class LutConfig:
    """Settings of the ``lut`` family.

    Attributes:
        strength: blend with the original, ``(low, high)`` within ``[0, 1]``, drawn
            uniformly (1 = the full grade).
        min_fmse: a pair whose foreground MSE (RGB, 0..255) is below this is redrawn.
        max_draws: attempts (LUT, strength) before the pair is given up.

    >>> LutConfig().to_dict()
    {'strength': [0.5, 1.0], 'min_fmse': 50.0, 'max_draws': 6}
    """

    strength: tuple[float, float] = (0.5, 1.0)
    min_fmse: float = 50.0
    max_draws: int = 6

    def __post_init__(self) -> None:
        if isinstance(self.strength, list):
            object.__setattr__(self, "strength", tuple(self.strength))
        if len(self.strength) != 2 or not 0.0 <= self.strength[0] <= self.strength[1] <= 1.0:
            raise ConfigError(f"LutConfig.strength must be (low, high) with 0 <= low <= high <= 1, got {self.strength!r}")
        if self.min_fmse < 0:
            raise ConfigError(f"LutConfig.min_fmse must be >= 0, got {self.min_fmse}")
        if isinstance(self.max_draws, bool) or not isinstance(self.max_draws, int) or self.max_draws < 1:
            raise ConfigError(f"LutConfig.max_draws must be an integer >= 1, got {self.max_draws!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples become lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}


class LutLibrary:
    """The LUTs of one folder by file name (sorted); build it with :func:`lut_library`."""

    def __init__(self, folder: Path, luts: dict[str, CubeLut]) -> None:
        self.folder = folder
        self.names = tuple(sorted(luts))
        self._luts = dict(luts)

    def __len__(self) -> int:
        return len(self.names)

    def draw(self, rng: np.random.Generator) -> tuple[str, CubeLut]:
        """A LUT drawn uniformly (one integer from ``rng``): ``(file name, table)``."""
        name = self.names[int(rng.integers(len(self.names)))]
        return name, self._luts[name]

    def get(self, name: str, sha256: str) -> CubeLut:
        """The LUT ``name``, checked against the content hash a recipe recorded.

        Raises:
            ConfigError: no such file in the folder, or a file whose content changed.
        """
        lut = self._luts.get(name)
        if lut is None:
            raise ConfigError(f"{self.folder}: no LUT file {name!r} (a recipe uses it)")
        if lut.sha256 != sha256:
            raise ConfigError(
                f"{self.folder / name}: content hash {lut.sha256[:16]}... differs from the recipe's "
                f"{sha256[:16]}...: the LUT changed since the recipe was made"
            )
        return lut

    def digest(self) -> str:
        """SHA-256 of the sorted ``name:content hash`` lines: the folder's identity."""
        return hashlib.sha256("".join(f"{n}:{self._luts[n].sha256}\n" for n in self.names).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """``{"folder", "count", "sha256"}`` (recorded in a benchmark's settings)."""
        return {"folder": str(self.folder), "count": len(self.names), "sha256": self.digest()}

    def __repr__(self) -> str:
        return f"LutLibrary({str(self.folder)!r}, {len(self.names)} LUTs)"


@functools.lru_cache(maxsize=8)
def _load_library(folder: str, listing: tuple[tuple[str, int, int], ...]) -> LutLibrary:
    return LutLibrary(Path(folder), {name: read_cube(Path(folder) / name) for name, _, _ in listing})


def lut_library(folder: str | Path | LutLibrary) -> LutLibrary:
    """The ``*.cube`` files of ``folder`` (read once per process; a library is returned as is).

    Raises:
        ConfigError: the folder does not exist or has no ``.cube`` file.
        harmonykit.lut.CubeFormatError: a malformed file (naming it and the line).
    """
    if isinstance(folder, LutLibrary):
        return folder
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"{folder}: LUT folder does not exist or is not a folder")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".cube" and p.is_file())
    if not files:
        raise ConfigError(f"{folder}: no .cube file in the LUT folder")
    listing = tuple((p.name, (st := p.stat()).st_size, st.st_mtime_ns) for p in files)
    return _load_library(str(path), listing)


@dataclass(frozen=True)
class LutGrade(Op):
    """Grade with the LUT ``file`` (content hash ``sha256``), blended at ``strength``.

    The op names its LUT; :meth:`bind` attaches the table from a folder before ``apply``.

    >>> LutGrade("a.cube", "0" * 64, 0.5).to_dict()["op"]
    'lut'
    """

    NAME: ClassVar[str] = "lut"
    KIND: ClassVar[str] = "lut"
    POINTWISE: ClassVar[bool] = True
    file: str
    sha256: str
    strength: float

    def __post_init__(self) -> None:
        if not isinstance(self.file, str) or not self.file or "/" in self.file or "\\" in self.file:
            raise ConfigError(f"LutGrade: parameter 'file' must be a file name, got {self.file!r}")
        if not isinstance(self.sha256, str) or not _SHA256.fullmatch(self.sha256):
            raise ConfigError(f"LutGrade: parameter 'sha256' must be 64 hex digits, got {self.sha256!r}")
        check_number("LutGrade", "strength", self.strength, lo=0.0, hi=1.0)

    def bind(self, luts: str | Path | LutLibrary | None) -> LutGrade:
        """This op with its table loaded from ``luts`` (a folder or a library).

        Raises:
            ConfigError: no folder given, no such file, or its content hash differs.
        """
        if luts is None:
            raise ConfigError(f"this recipe grades with the LUT {self.file!r}: replaying it needs the LUT folder (luts=DIR)")
        bound = LutGrade(self.file, self.sha256, self.strength)
        object.__setattr__(bound, "_lut", lut_library(luts).get(self.file, self.sha256))
        return bound

    def apply(self, image: np.ndarray) -> np.ndarray:
        lut: CubeLut | None = getattr(self, "_lut", None)
        if lut is None:
            raise ConfigError(f"LutGrade {self.file!r} has no table: call bind(folder) first")
        img = check_image(image)
        x = img.astype(np.float64)
        graded = apply_lut(x / 255.0, lut) * 255.0
        return round_uint8((1.0 - self.strength) * x + self.strength * graded)

