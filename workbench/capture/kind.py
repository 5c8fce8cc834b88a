"""What a capture kind is, and the one registry of them.

A capture kind (routing, attention, deltanet, mtp, expert_saliency, or one of your own) is a package under
`workbench/capture/<kind>/` holding
  settings.py   its options: a `KindSettings` dataclass whose fields carry their own default, help text and checks
                (`option(...)`); the CLI's `trace` flags and the manifest's `capture` entry come from these fields;
  schema.py     the columns of every table it writes (`workbench.trace.column.Column`);
  record.py     the typed record its recorder hands on (what it saw, on the CPU);
  recorder.py   the recorder (capture/recorder.py: attach, begin_sequence, collect, tables);
  tables.py     its table builder: record -> Arrow tables in its schema;
and an `__init__.py` that calls `register(CaptureKind(...))`. The kind is then turned on by its switch
(`CaptureSettings(<name>=True)`, CLI `--<name>`), written into manifests and listed by `workbench schema`; nothing
else names it. The built-in kinds are imported by `BUILTIN_KINDS` below (one line per kind); more can be loaded
from modules named in the environment variable WORKBENCH_CAPTURE_KINDS (comma-separated), which is how the test
kind under tests/ reaches a `workbench` subprocess.

This module and every kind's settings.py and schema.py import neither torch nor transformers: reading a trace (the
schema) never loads the model stack.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable

# The registration line: one package per built-in kind, in the order their recorders attach and their tables are
# listed (routing first: other kinds read the routers it hooks).
BUILTIN_KINDS = ("routing", "attention", "deltanet", "mtp", "saliency", "attribution")
PLUGINS_ENV = "WORKBENCH_CAPTURE_KINDS"


def option(default: Any, doc: str, *, least: int | None = None, choices: tuple | None = None,
           flag: str | None = None, item: type | None = None) -> Any:
    """A field of a KindSettings dataclass: its default, its help text (the CLI's --help), and the checks every value
    gets: of the default's type (bool, int, str), `least` (an int >= least), `choices` (one of them). A tuple option
    (default a tuple, `item` the type of its items) is a CLI flag given once per item. `flag` overrides the CLI name
    (default `--` + the field name with dashes)."""
    if isinstance(default, tuple) and item is None:
        raise TypeError("a tuple option needs item=<type of its items>")
    if not isinstance(default, (bool, int, str, tuple)):
        raise TypeError(f"option defaults are bool, int, str or tuple, got {default!r}")
    kind = item if isinstance(default, tuple) else type(default)
    metadata = {"doc": doc, "least": least, "choices": choices, "flag": flag, "type": kind,
                "repeatable": isinstance(default, tuple)}
    return field(default=default, metadata=metadata)


def flag_name(f) -> str:
    """The CLI flag of an option field: `--attention-stride` (or the name its `option(flag=...)` gives)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


@dataclass
class KindSettings:
    """Base of every kind's settings dataclass. Subclasses declare their options with `option(...)`; field names are
    unique across kinds (they are also the CLI flags and the manifest keys), so name them after the kind
    (`attention_stride`, not `stride`). `__post_init__` runs the field checks, then `validate()`."""

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata["repeatable"]:
                if isinstance(value, (int, str)) or not hasattr(value, "__iter__"):
                    raise ValueError(f"{f.name} must be a sequence, got {value!r}")
                value = tuple(value)  # a JSON manifest gives a list
                setattr(self, f.name, value)
            for item in value if f.metadata["repeatable"] else (value,):
                check_value(f.name, f.metadata, item)
        self.validate()

    def validate(self) -> None:
        """Checks across fields; raise ValueError with one line."""

    def check_environment(self, device: str | None) -> None:
        """Checks that depend on this machine, not on the settings alone (a manifest written on a GPU machine must
        still load elsewhere); run by the CLI before anything loads."""

    def recorder(self):
        """A fresh recorder for these settings (imported here, so that settings never import torch)."""
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def check_value(name: str, meta, value) -> None:
    """One value of option `name` (one item of a tuple option) against its `option` checks (one-line ValueError)."""
    wanted, cli = meta["type"], f"(CLI: {meta['flag'] or '--' + name.replace('_', '-')})"
    if isinstance(value, bool) != (wanted is bool) or not isinstance(value, wanted):
        article = "an" if wanted.__name__[0] in "aeiou" else "a"
        raise ValueError(f"{name} must be {article} {wanted.__name__}, got {value!r} {cli}")
    if meta["least"] is not None and value < meta["least"]:
        raise ValueError(f"{name} must be an integer >= {meta['least']}, got {value!r} {cli}")
    if meta["choices"] is not None and value not in meta["choices"]:
        quoted = ", ".join(repr(c) for c in meta["choices"])
        raise ValueError(f"{name} must be one of {quoted}, got {value!r} {cli}")


@dataclass(frozen=True)
class CaptureKind:
    """One registered capture kind.

    name:        the switch (`CaptureSettings(name=True)`, CLI `--name`, manifest key) and the recorder's kind.
    settings:    its KindSettings subclass (the options beside the switch).
    doc:         one line: what turning it on records (the switch's --help).
    tables:      table name -> columns (Column tuple) of every table it writes.
    default_on:  on unless turned off (routing); the CLI flag is then `--name/--no-name`.
    doctor:      adapter -> the settings that exercise every site of the kind on that family, or None where the
                 family has none of its sites (`workbench doctor` runs it); None for a kind the doctor checks apart.
    legacy_defaults: option -> a value older manifests stored while the kind was off (read as the default).
    """

    name: str
    settings: type
    doc: str
    tables: dict
    default_on: bool = False
    doctor: Callable[[Any], KindSettings | None] | None = None
    legacy_defaults: dict = field(default_factory=dict)

    def option_fields(self) -> list:
        return list(fields(self.settings))

    def defaults(self) -> dict:
        return {f.name: f.default for f in fields(self.settings) if f.default is not MISSING}


_KINDS: dict[str, CaptureKind] = {}
_loaded = False


def register(kind: CaptureKind) -> CaptureKind:
    """Add a kind (once; a duplicate name, table or option name raises)."""
    if kind.name in _KINDS:
        raise ValueError(f"capture kind {kind.name!r} is already registered")
    taken_options = {f.name for other in _KINDS.values() for f in other.option_fields()} | set(_KINDS)
    clash = sorted(({f.name for f in kind.option_fields()} | {kind.name}) & taken_options)
    if clash:
        raise ValueError(f"capture kind {kind.name!r}: option names already used by another kind: {clash}")
    taken_tables = {t for other in _KINDS.values() for t in other.tables}
    if set(kind.tables) & taken_tables:
        raise ValueError(f"capture kind {kind.name!r}: tables already written by another kind: "
                         f"{sorted(set(kind.tables) & taken_tables)}")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests that register one of their own)."""
    _KINDS.pop(name, None)


def registered_kinds() -> dict[str, CaptureKind]:
    """Every registered kind by name, in registration order (the built-ins first, then plugins)."""
    global _loaded
    if not _loaded:
        _loaded = True
        for package in BUILTIN_KINDS:
            importlib.import_module(f"{__package__}.{package}")
        for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
            try:
                importlib.import_module(module)
            except ImportError as error:
                raise ImportError(f"{PLUGINS_ENV} names {module!r}, which does not import: {error}") from error
    return dict(sorted(_KINDS.items(), key=lambda item: _builtin_rank(item[1])))


def _builtin_rank(kind: CaptureKind) -> int:
    """A built-in kind's place in BUILTIN_KINDS (whatever order the packages were imported in); plugins after."""
    parts = kind.settings.__module__.split(".")
    package = parts[-2] if len(parts) >= 2 and parts[-3:-2] == ["capture"] else None
    return BUILTIN_KINDS.index(package) if package in BUILTIN_KINDS else len(BUILTIN_KINDS)


def kind_tables() -> dict[str, tuple]:
    """Table name -> columns, of every registered kind, in registration order."""
    return {name: columns for kind in registered_kinds().values() for name, columns in kind.tables.items()}
