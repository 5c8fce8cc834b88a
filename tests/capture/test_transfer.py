"""Moving recorded fields off the device: one packed buffer per device, each field a view of it, equal to its
source in dtype, shape and every value."""

import pytest
import torch

from workbench.capture.transfer import _packed_copy, to_host


def fields(device):
    gen = torch.Generator().manual_seed(0)
    return {
        "ids": torch.randint(-300, 300, (3, 7), generator=gen).to(torch.int16),  # 42 bytes: the next field misaligns
        "weights": torch.randn(3, 7, 2, generator=gen),
        "flags": torch.rand(5, generator=gen) > 0.5,
        "wide": torch.randn(2, 3, generator=gen, dtype=torch.float64),
        "empty": torch.zeros(0, 4),
        "half": torch.randn(9, generator=gen).bfloat16(),
        "strided": torch.randn(4, 6, generator=gen).t(),  # not contiguous
    } if device == "cpu" else {k: v.to(device) for k, v in fields("cpu").items()}


def assert_same(got, expected):
    assert list(got) == list(expected)
    for name, value in expected.items():
        assert got[name].device.type == "cpu" and got[name].dtype == value.dtype, name
        assert got[name].shape == value.shape and torch.equal(got[name], value.cpu()), name


def test_packed_layout_round_trips_every_dtype_and_shape():
    source = fields("cpu")
    got = _packed_copy(source)
    assert_same(got, source)
    storages = {t.untyped_storage().data_ptr() for t in got.values() if t.numel()}
    assert len(storages) == 1  # one buffer behind every field


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_to_host_from_cuda_is_one_pinned_buffer():
    source = fields("cuda")
    got = to_host(source)
    assert_same(got, source)
    assert all(t.is_pinned() for t in got.values() if t.numel())


def test_to_host_leaves_cpu_fields_alone():
    source = fields("cpu")
    got = to_host(source)
    assert all(got[name] is source[name] for name in source)
