"""Settings: every one documented, and the configuration reference generated from them."""

from pathlib import Path

from app.settings import Settings, reference_markdown

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
