import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
import torch

from models.checkpoints import WEIGHTS, list_models, load_model, save_model, update_metrics
from models.errors import CheckpointError
from models.registry import build_model
from tests.helpers import tiny_config


def vouch(directory: Path, weights: bytes) -> None:
    """Rewrite model.json's checksum to match `weights`, as someone with write access could."""
    description = json.loads((directory / "model.json").read_text())
    description["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    (directory / "model.json").write_text(json.dumps(description))


def test_round_trip_gives_identical_codes(tmp_path: Path) -> None:
    model = build_model(tiny_config())
    images = torch.randint(0, 256, (16, 28, 28), dtype=torch.uint8)
    record = save_model(model, tmp_path, history={"epoch_losses": [0.5]})
    loaded, loaded_record = load_model(tmp_path / record.version)
    assert torch.equal(model.embed(images), loaded.embed(images))
    assert loaded_record.config == model.config.model_dump(mode="json")
    assert loaded_record.parameters == model.parameter_count()
    assert (tmp_path / record.version / "model.json").is_file()


def test_a_model_saved_before_a_field_existed_loads_as_it_was_indexed(tmp_path: Path) -> None:
    record = save_model(build_model(tiny_config()), tmp_path)
    description = json.loads((tmp_path / record.version / "model.json").read_text())
    assert description["config"]["stroke_pooled_code"] is True  # today's default
    for field in ("contrastive", "stroke_pooled_code"):  # what a model saved before them holds
        del description["config"][field]
    (tmp_path / record.version / "model.json").write_text(json.dumps(description))
    loaded, _ = load_model(tmp_path / record.version)
    assert loaded.config.stroke_pooled_code is False and loaded.config.contrastive == 0.0  # type: ignore[attr-defined]
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    with torch.no_grad():  # its gallery was embedded with the encoder's own codes, so its queries are too
        assert torch.equal(loaded.embed(images), loaded.encode(loaded.prepare(images)))


def test_version_is_a_content_hash(tmp_path: Path) -> None:
    first = save_model(build_model(tiny_config()), tmp_path)
    same = save_model(build_model(tiny_config()), tmp_path)
    other = save_model(build_model(tiny_config(seed=1)), tmp_path)
    assert first.version == same.version != other.version
    assert len(first.version) == 12


def test_metrics_are_merged_and_models_listed(tmp_path: Path) -> None:
    record = save_model(build_model(tiny_config()), tmp_path)
    update_metrics(tmp_path / record.version, {"retrieval": {"p_at_10": 0.5}})
    [listed] = list_models(tmp_path)
    assert listed.metrics["retrieval"]["p_at_10"] == 0.5


def test_a_pickle_placed_as_weights_is_refused(tmp_path: Path) -> None:
    record = save_model(build_model(tiny_config()), tmp_path)

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {tmp_path / 'owned'}",))

    payload = pickle.dumps(Exploit())
    (tmp_path / record.version / WEIGHTS).write_bytes(payload)
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_model(tmp_path / record.version)
    # Even with the description edited to vouch for it, the pickle is never unpickled.
    vouch(tmp_path / record.version, payload)
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load_model(tmp_path / record.version)
    assert not (tmp_path / "owned").exists()


def test_weights_of_another_architecture_are_refused(tmp_path: Path) -> None:
    small = save_model(build_model(tiny_config()), tmp_path)
    big = save_model(build_model(tiny_config(seed=3).model_copy(update={"channels": (4, 8, 16)})), tmp_path)
    other = (tmp_path / big.version / WEIGHTS).read_bytes()
    (tmp_path / small.version / WEIGHTS).write_bytes(other)
    vouch(tmp_path / small.version, other)
    with pytest.raises(CheckpointError, match="does not fit a conv model"):
        load_model(tmp_path / small.version)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"no model in .* \(model.json missing\)"):
        load_model(tmp_path / "nope")
