"""Runs by name: what each run of a trace folder is (its catalogue row) and picking one by name, id or id prefix.

A run's name is the manifest's `name` (`--name` on trace and generate; a probe's runs default to the probe's name),
its note the manifest's `note`. Kind: "probe" or "intervention" for a probe's run (its manifest says which),
"generation" for `workbench generate`, else "trace"."""

from __future__ import annotations

NAME_LIMIT = 100


class RunPickError(ValueError):
    """No run, or more than one, answers to the name given (one line, naming what there is)."""


def check_name(name: str | None, what: str = "name") -> str | None:
    """A run name or note as given on the command line: None, or a non-empty single line of at most NAME_LIMIT
    characters (notes: any length, one line)."""
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or "\n" in name:
        raise ValueError(f"--{what} must be a non-empty single line, got {name!r}")
    if what == "name" and len(name) > NAME_LIMIT:
        raise ValueError(f"--name must be at most {NAME_LIMIT} characters, got {len(name)}")
    return name.strip()


def run_name(manifest: dict) -> str | None:
    probe = manifest.get("probe") or {}
    return manifest.get("name") or probe.get("name")


def run_kind(manifest: dict) -> str:
    probe = manifest.get("probe")
    if probe:
        return "intervention" if probe.get("intervention") else "probe"
    return "generation" if "generation" in manifest else "trace"


def catalogue_row(manifest: dict) -> dict:
    """One run as `workbench runs` lists it."""
    model = manifest.get("model", {})
    return {"run_id": manifest["run_id"], "name": run_name(manifest) or "", "kind": run_kind(manifest),
            "model": model.get("source", ""), "dtype": model.get("dtype", ""), "device": model.get("device", ""),
            "tokens": int(manifest.get("num_tokens", 0)), "tables": ", ".join(manifest.get("tables", [])),
            "note": manifest.get("note", "")}


def pick_run(manifests: list[dict], wanted: str, where: str = "this trace") -> dict:
    """The run whose id is `wanted`, else the one named `wanted`, else the one whose id starts with it. An empty or an
    ambiguous pick raises RunPickError in one line."""
    if not manifests:
        raise RunPickError(f"{where} has no committed run")
    by_id = [m for m in manifests if m["run_id"] == wanted]
    named = [m for m in manifests if run_name(m) == wanted]
    prefixed = [m for m in manifests if m["run_id"].startswith(wanted)] if wanted else []
    for found in (by_id, named, prefixed):
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            ids = ", ".join(m["run_id"] for m in found)
            raise RunPickError(f"{wanted!r} names {len(found)} runs in {where} ({ids}): pick one by its id")
    names = sorted({run_name(m) for m in manifests if run_name(m)})
    raise RunPickError(f"no run named {wanted!r} in {where}; names: {', '.join(names) or 'none'}; ids: "
                       f"{', '.join(m['run_id'] for m in manifests)}")
