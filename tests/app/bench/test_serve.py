"""The benchmark commands in quick mode: every code path, on a few hundred images."""

import shutil
from pathlib import Path

import pytest

from app.bench.serve import HEALTH, UNBATCHED, AsyncioLoad, WrkLoad, multipart_body, scrape_metrics, server_side
from app.settings import Settings
from tests.helpers import bench_results, live_server, png_of, run_bench


def loads(tmp_path: Path, body: bytes) -> list:
    found: list = [AsyncioLoad([body])]
    if shutil.which("wrk"):
        found.append(WrkLoad(tmp_path, [body]))
    return found


@pytest.mark.slow
def test_bench_serve_and_train(trained_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESEEK_MNIST_SOURCE", "idx")
    root = trained_copy
    out = run_bench(root, "serve-matrix")
    serve = bench_results(out, "serve_matrix")
    rows = serve["rows"]
    scenarios = {"health", "search, unbatched", "search, batched", "search, unbatched, IVF", "search, batched, IVF"}
    assert {row["scenario"] for row in rows} == scenarios
    assert all(row["errors"] == 0 and row["requests"] > 0 for row in rows)
    batched = [row for row in rows if row["scenario"] == "search, batched"]
    assert {"decode", "preprocess", "encode", "search", "queue", "serialise"} <= set(batched[0]["stages_ms"])
    assert all(row["mean_batch_size"] >= 1 for row in batched)
    # The server's own request time covers at least its search stages.
    assert all(row["server_request_ms"] >= row["stages_ms"]["encode"] for row in batched)
    report = (out / "serve_matrix.md").read_text()
    assert "x unbatched search" in report and "Load generator:" in report
    # The real workspace is untouched by the IVF scenario (it serves from a scratch copy).
    assert not any("IVF" in path.name for path in (root / "galleries").iterdir())
    out = run_bench(root, "train")
    speed = bench_results(out, "train_speed")
    assert speed["aeseek_images_per_s"] > 0 and speed["bare_images_per_s"] > 0
    assert speed["encode_images_per_s"] > 0 and len(speed["variations"]) == 6


@pytest.mark.parametrize("scenario", [HEALTH, UNBATCHED])
def test_every_request_a_load_counts_is_one_the_server_answered(
    settings: Settings, full_mnist: dict, tmp_path: Path, scenario: str
) -> None:
    body = multipart_body(png_of(full_mnist["test"].images[0]))
    with live_server(settings, ready_path="/api/v1/ready") as url:
        for load in loads(tmp_path, body):
            before = scrape_metrics(url)
            result = load.run(url, scenario, 2, 1.0)
            after = scrape_metrics(url)
            server = server_side(before, after, scenario)
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
    from app.bench.serve import median_rounds

    rows = [
        {"scenario": HEALTH, "clients": 8, "requests_per_s": rps, "p99_ms": p99, "round": n}
        for n, (rps, p99) in enumerate([(900.0, 30.0), (1200.0, 10.0), (1000.0, 20.0)])
    ]
    [median] = median_rounds(rows)
    assert median == rows[2]  # 1000 req/s with its own p99, not figures mixed from several rounds
