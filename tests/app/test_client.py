"""`aeseek search` against a real server: a table or JSON of neighbours, clear errors otherwise."""

import json
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.settings import Settings
from tests.helpers import free_port, live_server, png_of


def test_search_prints_a_table_and_json(
    settings: Settings, train_images: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    first.write_bytes(png_of(train_images[0]))
    second.write_bytes(png_of(train_images[1]))
    with live_server(settings, "/api/v1/ready") as url:
        assert main(["search", str(first), str(second), "--url", url, "-k", "3"]) == 0
        table = capsys.readouterr().out
        assert main(["search", str(first), "--url", url, "-k", "2", "--json"]) == 0
        answers = json.loads(capsys.readouterr().out)
    assert "rank       id  label  distance  score" in table and f"{first}: nearest of model" in table
    assert [line.split()[:2] for line in table.splitlines() if line.strip().startswith("1  ")] == [
        ["1", "0"],
        ["1", "1"],
    ]
    assert answers[0]["image"] == str(first) and [r["id"] for r in answers[0]["answer"]["results"]][:1] == [0]
    assert len(answers[0]["answer"]["results"]) == 2


def test_search_says_what_went_wrong(settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    unreachable = f"http://127.0.0.1:{free_port()}"
    assert main(["search", str(empty), "--url", unreachable]) == 1
    assert f"cannot reach the service at {unreachable}" in capsys.readouterr().err
    with live_server(settings, "/api/v1/ready") as url:
        assert main(["search", str(empty), "--url", url]) == 1
    assert "the service answered 400 empty_file: the uploaded file is empty" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "missing.png")]) == 1
    assert "cannot read" in capsys.readouterr().err
