"""The nano's tokenizer as a fixture (built from its word lists; nothing read from disk)."""

import pytest

from workbench.nano import tokenizer as tk


@pytest.fixture(scope="module")
def hf_tokenizer():
    return tk.build_tokenizer()
