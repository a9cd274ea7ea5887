"""The load generators of `aeseek bench serve`, against a real server: what they count is what the server served."""

import shutil
from pathlib import Path

import pytest

from app.bench.serve import HEALTH, UNBATCHED, AsyncioLoad, WrkLoad, _scrape, _server_side, multipart_body
from app.settings import Settings
from tests.app.test_search_api import png_of
from tests.live_server import live_server


def loads(tmp_path: Path, body: bytes) -> list:
    found: list = [AsyncioLoad(body)]
    if shutil.which("wrk"):
        found.append(WrkLoad(tmp_path, body))
    return found


@pytest.mark.parametrize("scenario", [HEALTH, UNBATCHED])
def test_every_request_a_load_counts_is_one_the_server_answered(
    settings: Settings, full_mnist: dict, tmp_path: Path, scenario: str
) -> None:
    body = multipart_body(png_of(full_mnist["test"].images[0]))
    with live_server(settings, ready_path="/api/v1/ready") as url:
        for load in loads(tmp_path, body):
            before = _scrape(url)
            result = load.run(url, scenario, 2, 1.0)
            after = _scrape(url)
            server = _server_side(before, after, scenario)
            route = "/api/v1/health" if scenario == HEALTH else "/api/v1/search"
            served = sum(
                after[name] - before.get(name, 0.0)
                for name in after
                if name.startswith("aeseek_request_seconds_count") and f'route="{route}"' in name
            )
            assert result.errors == 0 and result.requests > 0, load.name
            # The load stops by itself; the server answered what it counted, plus at most the
            # requests in flight on each connection when the clock ran out.
            assert result.requests <= served <= result.requests + 2 * 2, load.name
            assert 0 < result.p50_ms <= result.p99_ms
            if scenario != HEALTH:
                assert {"decode", "preprocess", "encode", "search", "serialise"} <= set(server["stages_ms"])


def test_each_cell_reports_its_median_round_whole() -> None:
    from app.bench.serve import _medians

    rows = [
        {"scenario": HEALTH, "clients": 8, "requests_per_s": rps, "p99_ms": p99, "round": n}
        for n, (rps, p99) in enumerate([(900.0, 30.0), (1200.0, 10.0), (1000.0, 20.0)])
    ]
    [median] = _medians(rows)
    assert median == rows[2]  # 1000 req/s with its own p99, not figures mixed from several rounds
