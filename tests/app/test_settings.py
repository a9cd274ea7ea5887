"""Settings: every one documented, and the configuration reference generated from them."""

import os
from pathlib import Path

import pytest

from app.settings import Settings, batcher_decodes, decode_threads, reference_markdown, serve_worker_count

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_says_what_it_does() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not undocumented


def test_the_configuration_reference_is_generated_from_the_settings() -> None:
    assert REFERENCE.read_text() == reference_markdown(), (
        "docs/configuration.md is stale: run `aeseek settings --markdown > docs/configuration.md`"
    )
    for name in Settings.model_fields:
        assert f"`AESEEK_{name.upper()}`" in REFERENCE.read_text()


def test_decode_threads_share_the_cores_among_the_serve_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert decode_threads(Settings(_env_file=None)) == 8
    assert decode_threads(Settings(_env_file=None, serve_workers=4)) == 2
    assert decode_threads(Settings(_env_file=None, serve_workers=16)) == 1  # never none
    assert decode_threads(Settings(_env_file=None, max_concurrent_decodes=3, serve_workers=4)) == 3  # the setting wins
    one_per_core = Settings(_env_file=None, serve_workers=0)
    assert serve_worker_count(one_per_core) == 8 and decode_threads(one_per_core) == 1


def test_the_batcher_decodes_when_each_worker_has_a_core_at_most(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    assert not batcher_decodes(Settings(_env_file=None, serve_workers=1))  # a spare core for decode threads
    assert batcher_decodes(Settings(_env_file=None, serve_workers=2))
    assert batcher_decodes(Settings(_env_file=None, serve_workers=0))  # one per core
    assert batcher_decodes(Settings(_env_file=None, serve_workers=1, batcher_decodes=True))  # the setting wins
    assert not batcher_decodes(Settings(_env_file=None, serve_workers=2, batcher_decodes=False))
