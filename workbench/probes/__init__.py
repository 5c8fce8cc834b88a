"""Library side of the probes (experiments built on capture + trace); their command-line scripts live in the
repository's top-level probes/ folder."""


def add_model_arguments(parser, device_map: bool = True) -> None:
    """The options every probe script takes to load its model (see workbench.loading.load_model). device_map=False
    for a probe that builds a second copy of the model on one device (its random init), where a map would not do."""
    parser.add_argument("--model", default="nano", help='"nano", a local checkpoint folder or a cached HF id')
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--device", default=None)
    if device_map:
        parser.add_argument("--device-map", default=None, help='e.g. "auto": one model over several GPUs')


def load_from_arguments(args):
    """The LoadedModel the options of `add_model_arguments` name."""
    from ..loading import load_model

    return load_model(args.model, dtype=args.dtype, device=args.device, device_map=getattr(args, "device_map", None))
