from __future__ import annotations

import logging
import re
import shutil

import pytest
import torch

from tagger.errors import ModelLoadError
from tagger.frontend import FrontendConfig
from tagger.models import ARCHITECTURES, ModelConfig, Tagger, build_classifier
from tagger.weights import load_checkpoint

from audio_helpers import make_tiny_model, tone


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_architecture_builds_and_runs_a_batch(arch):
    fe = FrontendConfig()
    model = Tagger(fe, ModelConfig(arch, ("a", "b", "c"))).eval()
    with torch.inference_mode():
        logits = model(torch.randn(2, fe.segment_samples))
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()


def test_weights_round_trip(tmp_path):
    path = make_tiny_model(tmp_path)
    ckpt = load_checkpoint(path)
    assert path.name == f"tiny-{ckpt.digest}.safetensors"
    assert ckpt.version == f"tiny-{ckpt.digest}" and len(ckpt.labels) == 17
    x = torch.from_numpy(tone(3.0)[None])
    a, b = ckpt.build()(x), load_checkpoint(path).build()(x)
    assert torch.equal(a, b)


def test_checksum_failure_is_one_clear_error(tmp_path):
    path = make_tiny_model(tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip bits inside the tensors
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        load_checkpoint(path)


def test_unverifiable_name_warns_and_garbage_fails(tmp_path, caplog):
    path = make_tiny_model(tmp_path)
    renamed = tmp_path / "mine.safetensors"
    shutil.copy(path, renamed)
    with caplog.at_level(logging.WARNING):
        load_checkpoint(renamed)
    assert "could not be verified" in caplog.text
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="not a readable safetensors file"):
        load_checkpoint(junk)
    with pytest.raises(ModelLoadError, match="not found"):
        load_checkpoint(tmp_path / "missing-00000000.safetensors")


def test_mismatched_weights_are_refused(tmp_path):
    ckpt = load_checkpoint(make_tiny_model(tmp_path))
    ckpt.state_dict.pop("head.weight")
    with pytest.raises(ModelLoadError, match="do not match"):
        ckpt.build()


def test_unknown_aggregation_is_refused(tmp_path):
    from tagger.weights import save_checkpoint

    ckpt = load_checkpoint(make_tiny_model(tmp_path / "a"))
    ckpt.aggregation = {"method": "median", "top_fraction": 0.5}
    with pytest.raises(ModelLoadError, match="unknown aggregation"):
        load_checkpoint(save_checkpoint(ckpt, tmp_path / "b"))


@pytest.mark.parametrize("factors", [(2, 2), (1, 4), (4, 1), (1, 2)])
@pytest.mark.parametrize("shape", [(2, 3, 8, 10), (1, 4, 7, 65), (3, 1, 33, 5)])
def test_maxpool_is_exactly_nn_maxpool2d(shape, factors):
    from tagger.models import MaxPool

    x = torch.randn(*shape)
    assert torch.equal(MaxPool(*factors)(x), torch.nn.MaxPool2d(factors)(x))


def test_maxpool_refuses_factors_that_are_not_powers_of_two():
    from tagger.models import MaxPool

    with pytest.raises(ValueError, match="powers of two"):
        MaxPool(3, 1)


@pytest.mark.parametrize("extra, first_stage", [({}, (16, 32)), ({"stem_pool": True}, (16, 32)),
                                                 ({"stem_pool": False}, (32, 65)), ({"stem_pool": [1, 4]}, (32, 16))])
def test_the_stem_pool_sets_the_map_the_first_stage_sees(extra, first_stage):
    from tagger.config import FrontendConfig, ModelConfig
    from tagger.models import build_classifier

    frontend = FrontendConfig()
    net = build_classifier(ModelConfig("resnet", ("a", "b"), width=8, extra=extra), frontend).eval()
    x = torch.randn(1, 1, frontend.n_mels, frontend.n_frames)
    assert tuple(net.stem(net.input_norm(x)).shape[-2:]) == first_stage
    assert net(x).shape == (1, 2)


def test_tensors_of_a_file_replaced_after_its_header_was_read_are_refused(tmp_path):
    from tagger.weights import load_tensors, read_header

    path = make_tiny_model(tmp_path / "a")
    header = read_header(path)
    assert header.state_dict == {} and load_tensors(header, path).state_dict
    shutil.copyfile(make_tiny_model(tmp_path / "b", seed=1), path)  # same name, other weights
    with pytest.raises(ModelLoadError, match="changed while it was being loaded"):
        load_tensors(header, path)


@pytest.mark.parametrize("arch", ["resnet", "cnn", "resnet18"])
def test_folding_batch_norms_keeps_the_outputs(arch):
    """The CPU scorer's inference copy: batch norms folded into the convolutions, channels-last input."""
    import torch

    from tagger.models import fold_batch_norms

    torch.manual_seed(0)
    model = build_classifier(ModelConfig(arch=arch, labels=("a", "b", "c"), width=8), FrontendConfig())
    for m in model.modules():  # trained-looking statistics, not the identity of a fresh layer
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
    model.eval()
    folded = fold_batch_norms(model).to(memory_format=torch.channels_last)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for name, m in folded.named_modules() if "input_norm" not in name)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(4, 1, 64, 130)
    with torch.inference_mode():
        assert torch.allclose(folded(x.contiguous(memory_format=torch.channels_last)), model(x), atol=1e-4)


@pytest.mark.parametrize("extra, says", [({"stem_pool": [2, 2], "attention": 1}, "does not know: attention"),
                                         ({"band_mean_share": 0.5}, "does not know: band_mean_share")])
def test_weights_with_a_setting_this_tagger_cannot_build_are_refused_not_ignored(tmp_path, extra, says):
    """An unknown setting would be dropped and the network would score another input than
    it was trained on."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from tagger.errors import ModelLoadError
    from tagger.weights import load_checkpoint

    path = make_tiny_model(tmp_path / "a")
    with safe_open(str(path), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    tagger_meta = json.loads(meta["tagger"])
    tagger_meta["model"]["extra"] = extra
    save_file(tensors, str(tmp_path / "b.safetensors"), metadata={**meta, "tagger": json.dumps(tagger_meta)})
    with pytest.raises(ModelLoadError, match=re.escape(says)):
        load_checkpoint(tmp_path / "b.safetensors")
