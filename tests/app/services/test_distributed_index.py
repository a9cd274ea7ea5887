"""`aeseek index build --nproc N`: ranks encode shards and write them to the store; the gallery equals one process's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.services.distributed_index import build_across
from app.services.galleries import milvus_store
from app.services.workspace import Workspace
from index.backend import IndexSpec
from index.gallery import Gallery
from tests.helpers import serving_settings


@pytest.mark.slow
def test_two_ranks_build_the_faiss_gallery_one_process_builds(trained_copy: Path) -> None:
    workspace = Workspace(trained_copy, "idx")
    version = workspace.active().model_version  # type: ignore[union-attr]
    single = Gallery.load(workspace.build_gallery(version, "train"))
    merged = Gallery.load(Path(build_across(serving_settings(trained_copy), version, "train", IndexSpec(), 2)))
    assert merged.items == single.items
    np.testing.assert_allclose(merged.all_codes()[0], single.all_codes()[0], atol=1e-5)
    assert merged.manifest.distance_scale == pytest.approx(single.manifest.distance_scale, rel=1e-5)


@pytest.mark.slow
def test_two_ranks_insert_their_shards_into_one_milvus_collection(
    trained_copy: Path, milvus_server: str, milvus_prefix: str
) -> None:
    settings = serving_settings(
        trained_copy, index_backend="milvus", milvus_uri=milvus_server, milvus_prefix=milvus_prefix
    )
    workspace = Workspace(trained_copy, "idx")
    version = workspace.active().model_version  # type: ignore[union-attr]
    single = Gallery.load(workspace.build_gallery(version, "train"))
    store = milvus_store(settings)
    gallery = store.open(build_across(settings, version, "train", IndexSpec(), 2))
    try:
        assert gallery.items == single.items and gallery.manifest.model_version == version
        queries = single.all_codes()[0][:5]
        assert [[n.item.id for n in row] for row in gallery.search(queries, 5)] == [
            [n.item.id for n in row] for row in single.search(queries, 5)
        ]
    finally:
        store.drop(gallery.name)
