"""One registry type for every kind of named component (timm / mmengine style).

A :class:`Registry` maps names to builders (functions, classes, or ready objects such as
the classical baselines) so that configurations can name components by string and stay
JSON-able. The package's registries are all instances of this class:

* :data:`harmonykit.models.registry.MODELS` - models (``om_unet``, ``srin_unet``, ...);
* :data:`harmonykit.models.heads.HEADS` - model heads (``lab``, ``rgb``, ...);
* :data:`harmonykit.models.layers.NORMS` - plain norms ``norm(x)`` (``in``, ``bn``, ...) and
  :data:`harmonykit.models.layers.ACTS` - activations (``relu``, ``lrelu``, ...);
* :data:`harmonykit.models.norms.REGION_NORMS` - region-aware norms ``norm(x, mask,
  regions)`` (``in``, ``rain``, ``bain``, ``srin``);
* :data:`harmonykit.models.discriminator.DISCRIMINATORS` - ``patch_gan``, ...;
* :data:`harmonykit.data.perturb.ops.OPS` - perturbation operations (``pilgram``, ...);
* :data:`harmonykit.baselines.BASELINES` - classical baselines (``reinhard``, ...).

Registering (as a decorator, with or without a name, or as a plain call) and building:

>>> COLOURS: Registry[Callable[..., str]] = Registry("colour")
>>> @COLOURS.register()
... def red(shade: str = "") -> str:
...     return shade + "red"
>>> _ = COLOURS.register("blue", lambda: "blue")
>>> COLOURS.names(), COLOURS.create("red", shade="dark "), "red" in COLOURS
(['blue', 'red'], 'dark red', True)
>>> COLOURS.list("b*")
['blue']

An unknown name raises :class:`UnknownNameError` (a :class:`~harmonykit.errors.ConfigError`,
hence a ``ValueError``, and a ``KeyError``) whose message lists the valid names; registering
a taken name raises ``ValueError`` unless ``overwrite=True``:

>>> COLOURS.create("green")
Traceback (most recent call last):
...
harmonykit.registry.UnknownNameError: unknown colour 'green'; expected one of: blue, red
>>> COLOURS.register("red", lambda: "crimson")
Traceback (most recent call last):
...
ValueError: colour 'red' is already registered
"""

from __future__ import annotations

import builtins
import fnmatch
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from harmonykit.errors import ConfigError

__all__ = ["Registry", "UnknownNameError"]

#: the type of what a registry holds: a builder (function or class) or a callable object
T = TypeVar("T", bound=Callable[..., Any])


class UnknownNameError(ConfigError, KeyError):
    """A name that a :class:`Registry` does not hold; the message lists the valid names.

    A :class:`~harmonykit.errors.ConfigError` (a user mistake, printed by the CLI without a
    traceback; also a ``ValueError``) and a ``KeyError`` (a failed lookup).

    >>> err = UnknownNameError("model", "om_unet_huge", ["om_unet", "om_unet_small"])
    >>> str(err)
    "unknown model 'om_unet_huge'; expected one of: om_unet, om_unet_small"
    >>> isinstance(err, ValueError) and isinstance(err, KeyError)
    True
    """

    def __init__(self, kind: str, name: object, valid: builtins.list[str]) -> None:
        self.kind = kind
        self.name = name
        self.valid = builtins.list(valid)
        listed = ", ".join(self.valid) if self.valid else f"(no {kind} is registered)"
        super().__init__(f"unknown {kind} {name!r}; expected one of: {listed}")

    # KeyError would print the message quoted (as a missing key's repr)
    __str__ = BaseException.__str__


class Registry(Generic[T]):
    """Name -> builder table with a decorator, lookups and a helpful unknown-name error.

    Args:
        kind: what the registry holds, singular (``"model"``, ``"region norm"``); used in
            error messages.
        case_insensitive: names are stored and looked up lower-cased (``"IN"`` is ``"in"``).

    Iterating (``for name in registry``, :meth:`items`) follows registration order, like a
    ``dict``; :meth:`names` and :meth:`list` are sorted.
    """

    def __init__(self, kind: str, *, case_insensitive: bool = False) -> None:
        self.kind = kind
        self.case_insensitive = case_insensitive
        self._entries: dict[str, T] = {}

    # ------------------------------------------------------------------ keys
    def _key(self, name: object) -> str | None:
        """The stored form of ``name``, or ``None`` when ``name`` is not a string."""
        if not isinstance(name, str):
            return None
        return name.lower() if self.case_insensitive else name

    # ----------------------------------------------------------- registering
    @overload
    def register(self, name: str | None = None, *, overwrite: bool = False) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str | None, obj: T, *, overwrite: bool = False) -> T: ...

    def register(
        self, name: str | None = None, obj: T | None = None, *, overwrite: bool = False
    ) -> T | Callable[[T], T]:
        """Register ``obj`` under ``name`` (default: ``obj.__name__``).

        ``register(name)`` / ``register()`` return a decorator (which returns the object
        unchanged, so decorators stack to register one object under several names);
        ``register(name, obj)`` registers at once and returns ``obj``.

        Raises:
            ValueError: ``name`` is taken (and ``overwrite`` is false) or empty.
            TypeError: ``name`` is not a string (e.g. ``@registry.register`` without
                parentheses).
        """
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"{self.kind} name must be a string or None, got {type(name).__name__} "
                "(use @registry.register() with parentheses)"
            )

        def add(item: T) -> T:
            key = self._key(name if name is not None else getattr(item, "__name__", None))
            if not key:
                raise ValueError(f"cannot register {item!r} as a {self.kind}: no name given")
            if key in self._entries and not overwrite:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = item
            return item

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return what it held (tests, plugins being reloaded).

        Raises:
            UnknownNameError: ``name`` is not registered.
        """
        item = self.get(name)
        del self._entries[self._key(name)]  # type: ignore[arg-type]  # get() checked it
        return item

    # --------------------------------------------------------------- lookups
    def get(self, name: object) -> T:
        """What ``name`` was registered with.

        Raises:
            UnknownNameError: ``name`` is not registered (or not a string); the message
                lists the registered names.
        """
        key = self._key(name)
        if key is None or key not in self._entries:
            raise self.error(name)
        return self._entries[key]

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the builder registered as ``name`` with ``args`` and ``kwargs``.

        Raises:
            UnknownNameError: ``name`` is not registered.
        """
        return self.get(name)(*args, **kwargs)

    def error(self, name: object) -> UnknownNameError:
        """The error for an unknown ``name`` (for callers that validate before building)."""
        return UnknownNameError(self.kind, name, self.names())

    def names(self) -> builtins.list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def list(self, pattern: str | None = None) -> builtins.list[str]:
        """Registered names matching the shell-style ``pattern`` (``fnmatch``), sorted.

        ``None`` lists every name. Matching is case-sensitive unless the registry is
        ``case_insensitive``.
        """
        if pattern is None:
            return self.names()
        pat = pattern.lower() if self.case_insensitive else pattern
        return [n for n in self.names() if fnmatch.fnmatchcase(n, pat)]

    def items(self) -> builtins.list[tuple[str, T]]:
        """``(name, builder)`` pairs in registration order."""
        return builtins.list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        key = self._key(name)
        return key is not None and key in self._entries

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(builtins.list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"
