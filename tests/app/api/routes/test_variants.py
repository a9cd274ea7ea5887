"""/variants: every registered variant, each with a summary and a default config that POST /train accepts."""

from fastapi.testclient import TestClient

from models.registry import VARIANTS, config_from_dict


def test_every_variant_is_listed_with_a_valid_default_config(client: TestClient) -> None:
    listed = client.get("/api/v1/variants").json()
    assert listed["count"] == len(VARIANTS) == 12
    assert [entry["variant"] for entry in listed["data"]] == list(VARIANTS)
    for entry in listed["data"]:
        assert entry["summary"] and not entry["summary"].startswith(entry["variant"])
        assert config_from_dict(entry["defaults"]).variant == entry["variant"]
