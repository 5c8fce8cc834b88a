"""What a capture records: the mapping of the capture kinds turned on to their settings.

    settings = CaptureSettings(attention=True, attention_stride=32)   # flat keywords: switches and options
    "attention" in settings                  # True: the kind is on
    settings["attention"].attention_stride   # 32: the kind's own settings dataclass (capture/<kind>/settings.py)
    settings.to_dict()                       # flat {switch or option: value} of every registered kind (manifests)

Every kind's options, defaults and checks live in its own package; this mapping knows none of them by name.
"""

from __future__ import annotations

from collections.abc import Mapping

from .kind import CaptureKind, KindSettings, flag_name, registered_kinds


class CaptureSettings(Mapping):
    """Kind name -> its KindSettings, for the kinds turned on, in registration order. Built from flat keywords:
    each registered kind's switch (`routing`, `attention`, ...; only routing is on by default) and its options
    (`attention_stride`, ...). An option set away from its default while its kind is off raises (it would do
    nothing), as does an unknown name."""

    def __init__(self, **flat):
        kinds = registered_kinds()
        owner = {f.name: kind for kind in kinds.values() for f in kind.option_fields()}
        unknown = sorted(set(flat) - set(owner) - set(kinds))
        if unknown:
            known = sorted(set(owner) | set(kinds))
            raise ValueError(f"unknown capture settings: {unknown}; known: {known}")
        self._kinds: dict[str, KindSettings] = {}
        for name, kind in kinds.items():
            on = flat.get(name, kind.default_on)
            if not isinstance(on, bool):
                raise ValueError(f"{name} must be True or False, got {on!r}")
            options = {f.name: flat[f.name] for f in kind.option_fields() if f.name in flat}
            if on:
                self._kinds[name] = kind.settings(**options)
            else:
                _check_unused(kind, options)

    @classmethod
    def of(cls, *settings: KindSettings) -> "CaptureSettings":
        """The mapping of exactly these kinds' settings (routing off unless given)."""
        kinds = {kind.settings: name for name, kind in registered_kinds().items()}
        flat = {name: False for name in registered_kinds()}
        for item in settings:
            flat[kinds[type(item)]] = True
            flat.update(item.to_dict())
        return cls(**flat)

    def __getitem__(self, kind: str) -> KindSettings:
        try:
            return self._kinds[kind]
        except KeyError:
            if kind in registered_kinds():
                raise KeyError(f"{kind} capture is off (CaptureSettings({kind}=True) turns it on)") from None
            raise KeyError(f"unknown capture kind {kind!r}; kinds: {', '.join(registered_kinds())}") from None

    def __iter__(self):
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def __eq__(self, other) -> bool:
        return isinstance(other, CaptureSettings) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"CaptureSettings({', '.join(repr(s) for s in self._kinds.values())})"

    def check_environment(self, device: str | None = None) -> None:
        """Each turned-on kind's checks that depend on this machine (e.g. a GPU-only path asked for)."""
        for settings in self._kinds.values():
            settings.check_environment(device)

    def recorders(self) -> list:
        """One fresh recorder per kind turned on, in registration order."""
        return [settings.recorder() for settings in self._kinds.values()]

    def to_dict(self) -> dict:
        """Flat {switch: bool, option: value} of every registered kind (defaults for the kinds that are off): the
        manifest's `capture` entry, and what `from_dict` reads back."""
        flat = {}
        for name, kind in registered_kinds().items():
            flat[name] = name in self._kinds
            flat.update(self._kinds[name].to_dict() if name in self._kinds else kind.defaults())
        return flat

    @classmethod
    def from_dict(cls, data: dict) -> "CaptureSettings":
        """Read a manifest's `capture` entry; values older manifests stored for a kind that was off (a kind's
        `legacy_defaults`) read as the default."""
        data = dict(data)
        for name, kind in registered_kinds().items():
            if not data.get(name, kind.default_on):
                for option, old in kind.legacy_defaults.items():
                    if data.get(option) == old:
                        data.pop(option)
        return cls(**data)


def _check_unused(kind: CaptureKind, options: dict) -> None:
    """Options of a kind that is off must be left at their defaults (asking for them would silently do nothing)."""
    asked = [f for f in kind.option_fields() if f.name in options and _as_stored(options[f.name], f.default) != f.default]
    if asked:
        flags = ", ".join(flag_name(f) for f in asked)
        asked = [f.name for f in asked]
        raise ValueError(f"{', '.join(asked)} need{'s' if len(asked) == 1 else ''} {kind.name}=True (CLI: {flags} "
                         f"need{'s' if len(asked) == 1 else ''} --{kind.name.replace('_', '-')})")


def _as_stored(value, default):
    """A tuple option given as a list (JSON) compares as the tuple it becomes."""
    return tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value
