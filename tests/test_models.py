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


def test_pcen_is_librosas_pcen_of_the_mel_energy():
    """On a real log-Mel (a tone that starts, swells and stops over noise): PCEN of the
    frontend's log-Mel equals librosa.pcen of its mel energy, at the default settings."""
    import librosa
    import numpy as np
    import scipy.signal

    from tagger.frontend import logmel
    from tagger.models import PCEN

    fe = FrontendConfig()
    rng = np.random.default_rng(0)
    wave = 0.01 * rng.standard_normal(fe.segment_samples).astype(np.float32)
    wave[20000:50000] += tone(30000 / fe.sample_rate, 440.0, sr=fe.sample_rate)[:30000] * np.linspace(0.1, 1, 30000, dtype=np.float32)
    x = logmel(wave[None], fe)  # (1, mels, frames)
    energy = np.exp(x[0].astype(np.float64))
    t = 0.4 * fe.sample_rate / fe.hop_length
    b = (np.sqrt(1 + 4 * t**2) - 1) / (2 * t**2)
    start = scipy.signal.lfilter_zi([b], [1, b - 1]) * energy[:, :1]  # the low-pass starts at the first frame
    want = librosa.pcen(energy, sr=fe.sample_rate, hop_length=fe.hop_length,
                        gain=0.98, bias=2.0, power=0.5, time_constant=0.4, eps=1e-6, zi=start)
    got = PCEN(fe.n_mels, fe.sample_rate / fe.hop_length)(torch.from_numpy(x)[:, None])[0, 0].detach().numpy()
    assert np.abs(got - want).max() < 1e-4 * np.abs(want).max()


def test_pcen_divides_a_fixed_colouring_mostly_away():
    """A fixed EQ (a gain per mel band, a constant in log-Mel) of up to +-12 nats moves the
    log-Mel by six of its standard deviations on average; after PCEN (alpha 0.98: 2 % of the
    gain is left) by less than a fifth of one."""
    from tagger.models import PCEN

    torch.manual_seed(0)
    x = torch.randn(2, 1, 16, 130)
    colour = torch.linspace(-12, 12, 16).view(1, 1, 16, 1)
    pcen = PCEN(16, 43.07)
    with torch.no_grad():
        plain, coloured = pcen(x), pcen(x + colour)
    assert colour.abs().mean() / x.std() > 6
    assert (coloured - plain).abs().mean() / plain.std() < 0.2


def test_a_pcen_model_round_trips_and_old_weights_build_without_it(tmp_path):
    from tagger.models import PCEN
    from tagger.weights import Checkpoint, save_checkpoint

    fe, config = FrontendConfig(), ModelConfig("resnet", ("piano", "drums"), width=8, extra={"pcen": True})
    model = Tagger(fe, config).eval()
    assert isinstance(model.classifier.input_norm.pcen, PCEN)
    with torch.no_grad():
        model.classifier.input_norm.pcen.log_r.fill_(-1.0)  # learnt values travel with the weights
    path = save_checkpoint(Checkpoint(fe, config, model.classifier.state_dict(), {"piano": 0.5, "drums": 0.5}, name="p"), tmp_path)
    back = load_checkpoint(path).build()
    x = torch.randn(3, 1, 64, 130)
    with torch.no_grad():
        assert torch.allclose(back.classifier(x), model.classifier(x), atol=1e-5)
    assert Tagger(fe, ModelConfig("resnet", ("piano",), width=8)).classifier.input_norm.pcen is None
