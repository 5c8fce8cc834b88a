"""Every supported family as a tiny checkpoint the tests write (save_pretrained) and load back through
`load_model`, the path the CLI takes."""

import pytest
from support.toy import write_checkpoint

from workbench.adapters.tiny import FAMILY_CONFIGS, build_family_model

FAMILIES = list(FAMILY_CONFIGS)


@pytest.fixture(scope="session")
def family_checkpoints(tmp_path_factory, tokenizer):
    """family -> (in-memory model it was saved from, checkpoint folder, loaded model); built on first use."""
    from workbench.loading import load_model

    cache = {}

    def get(name):
        if name not in cache:
            model = build_family_model(name, len(tokenizer), seed=FAMILIES.index(name))
            folder = write_checkpoint(tmp_path_factory.mktemp("family") / name, model, tokenizer)
            cache[name] = (model, folder, load_model(str(folder), dtype="float32"))
        return cache[name]

    return get
