"""The capture flags of the commands that trace (`workbench trace`), generated from the registered capture kinds:
each kind's switch (`--attention`; `--routing/--no-routing` for a kind on by default) and each of its options
(`--attention-stride`, help text from the option's doc). A kind registered in capture/kind.py gets its flags here
without an edit to cli.py."""

from __future__ import annotations

import functools
import inspect
import typing
from typing import List, Optional

import typer

from .capture.kind import flag_name, registered_kinds


def capture_parameters() -> list[inspect.Parameter]:
    """One keyword-only parameter (a typer Option) per switch and option of every registered kind, in registration
    order; each parameter is named as its CaptureSettings keyword."""
    params = []
    for name, kind in registered_kinds().items():
        switch = "--" + name.replace("_", "-")
        if kind.default_on:
            switch += f"/--no-{name.replace('_', '-')}"
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                                        default=typer.Option(kind.default_on, switch, help=kind.doc)))
        for f in kind.option_fields():
            meta = f.metadata
            if meta["repeatable"]:
                annotation, default = Optional[List[meta["type"]]], None
            else:
                annotation, default = meta["type"], f.default
            params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                            default=typer.Option(default, flag_name(f), help=meta["doc"])))
    return params


def settings_keywords(flags: dict) -> dict:
    """The generated flags' values -> CaptureSettings keywords (a repeatable flag given no time is an empty tuple)."""
    repeatable = {f.name for kind in registered_kinds().values() for f in kind.option_fields()
                  if f.metadata["repeatable"]}
    return {name: tuple(value or ()) if name in repeatable else value for name, value in flags.items()}


def with_capture_flags(command):
    """`command(..., **capture)` -> a function typer reads as taking the command's own options followed by every
    capture flag; the capture flags reach `command` as the `capture` keywords (CaptureSettings keywords)."""
    own = inspect.signature(command)
    hints = typing.get_type_hints(command)
    names = {p.name for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    extra = capture_parameters()
    clash = names & {p.name for p in extra}
    if clash:
        raise ValueError(f"capture flags {sorted(clash)} clash with {command.__name__}'s own options")

    @functools.wraps(command)
    def wrapper(**values):
        own_values = {k: v for k, v in values.items() if k in names}
        flags = {k: v for k, v in values.items() if k not in names}
        return command(**own_values, **settings_keywords(flags))

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
              for p in own.parameters.values() if p.name in names]
    wrapper.__signature__ = inspect.Signature(params + extra)
    wrapper.__annotations__ = {p.name: p.annotation for p in params + extra}
    del wrapper.__wrapped__  # typer must read __signature__, not the wrapped function's
    return wrapper
