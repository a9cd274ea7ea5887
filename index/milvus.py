"""Milvus as the gallery store beyond one machine: Milvus Lite (a file) or a Milvus server (a URI).

One collection per (model version, gallery) holds every item: id, code, label, split,
position in its split, metadata and the 28x28 image; the gallery's manifest and its next id
sit in the collection's properties. One alias per gallery names the active collection:
switching it is atomic for every process that reads it. A loaded gallery searches the
collection it was opened on, never the alias, so a switch cannot mix two model versions in
one answer. Reads use Session consistency: a process sees its own writes at once and other
processes' writes within Milvus's time tick (about 200 ms); Strong consistency would make every
search wait for that tick (320 ms a query against 1.7 ms in a one-off pymilvus timing on the
embedded server, 2026-11-29; not a repository command).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from index.backend import IndexOperationError, IndexSpec
from index.gallery import FORMAT_VERSION, Gallery, GalleryError, GalleryItem, Manifest, Neighbour, similarity
from models.errors import ErrorCode, InvalidRequestError, NotReadyError

IMAGE_SIDE = 28
CONNECT_TIMEOUT_S = 5.0
INSERT_BATCH = 5000
QUERY_BATCH = 10_000  # under Milvus's limit of 16,384 rows per query
ITEM_FIELDS = ["id", "label", "split", "position", "metadata"]
MANIFEST_PROPERTY = "aeseek.manifest"
NEXT_ID_PROPERTY = "aeseek.next_id"
# aeseek's index kinds as Milvus index types; Milvus Lite has no IVF_PQ (it says so and scans).
MILVUS_INDEX_TYPES = {"Flat": "FLAT", "IVF": "IVF_FLAT", "HNSW": "HNSW", "IVFPQ": "IVF_PQ"}
LITE_INDEX_KINDS = ("Flat", "IVF", "HNSW")


class MilvusUnavailableError(NotReadyError):
    """Milvus did not answer or failed a call: the service waits for it (503), it is not the request's fault."""

    code = ErrorCode.NOT_READY


def is_server_uri(uri: str) -> bool:
    """True for a Milvus server address, False for a Milvus Lite file path."""
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def build_params(spec: IndexSpec, count: int) -> tuple[str, dict[str, Any]]:
    """The Milvus index type and build parameters of an index spec, for `count` vectors."""
    nlist = max(1, min(spec.nlist, count // 39)) if count else spec.nlist  # as FAISS: >= 39 points per cell
    params: dict[str, dict[str, Any]] = {
        "Flat": {},
        "IVF": {"nlist": nlist},
        "HNSW": {"M": spec.hnsw_m, "efConstruction": spec.ef_construction},
        "IVFPQ": {"nlist": nlist, "m": spec.pq_bytes, "nbits": 8},
    }
    return MILVUS_INDEX_TYPES[spec.kind], params[spec.kind]


def search_params(spec: IndexSpec, k: int) -> dict[str, Any]:
    """Search-time knobs of an index spec (HNSW's ef must be at least k in Milvus)."""
    knobs: dict[str, Any] = {}
    if spec.kind in ("IVF", "IVFPQ"):
        knobs = {"nprobe": spec.nprobe}
    elif spec.kind == "HNSW":
        knobs = {"ef": max(spec.ef_search, k)}
    return {"metric_type": "L2", "params": knobs}


def _encode_image(image: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).decode("ascii")


def _decode_image(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE)


def _item(row: dict[str, Any]) -> GalleryItem:
    metadata = row.get("metadata") or None  # stored as {} when there is none (JSON fields are not nullable)
    return GalleryItem(int(row["id"]), str(row["split"]), int(row["position"]), int(row["label"]), metadata)


class MilvusStore:
    """The galleries of one aeseek deployment in one Milvus (all names start with `prefix`)."""

    def __init__(self, uri: str, prefix: str = "aeseek", token: str = "") -> None:
        if not is_server_uri(uri) and not uri.endswith(".db"):
            raise ValueError(
                f"a Milvus URI is http://host:port (a server) or a file path ending in .db (Milvus Lite): {uri}"
            )
        self.uri = uri
        self.prefix = prefix
        self._token = token
        self._client: MilvusClient | None = None
        # Milvus Lite's local engine is one process's; calls into it are serialised here.
        self._lock = threading.Lock() if not is_server_uri(uri) else None

    @property
    def client(self) -> MilvusClient:
        """The pymilvus client, connected on first use (a service starts, and waits, while Milvus is down)."""
        if self._client is None:
            try:
                self._client = MilvusClient(uri=self.uri, token=self._token, timeout=CONNECT_TIMEOUT_S)
            except MilvusException as error:
                raise MilvusUnavailableError(f"Milvus ({self.uri}) cannot be reached: {error.message}") from error
        return self._client

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            if self._lock is None:
                return getattr(self.client, method)(*args, **kwargs)
            with self._lock:
                return getattr(self.client, method)(*args, **kwargs)
        except MilvusException as error:
            raise MilvusUnavailableError(f"Milvus ({self.uri}) failed {method}: {error.message}") from error

    def alias(self, gallery: str) -> str:
        """The alias naming the active collection of a gallery."""
        return f"{self.prefix}_{gallery}"

    def active_collection(self, gallery: str) -> str | None:
        """The collection the gallery's alias names, or None before the first activation."""
        alias = self.alias(gallery)
        if alias not in self._call("list_aliases").get("aliases", []):
            return None  # asked first: describing a missing alias makes pymilvus log a traceback
        try:
            return str(self._call("describe_alias", alias)["collection_name"])
        except MilvusUnavailableError:  # dropped in between
            return None

    def collections(self, version: str | None = None, gallery: str | None = None) -> list[str]:
        """Collections of this deployment, of one model version and gallery when given, oldest first."""
        names = [name for name in self._call("list_collections") if name.startswith(f"{self.prefix}_")]
        found = []
        for name in names:
            try:
                manifest = self.read_manifest(name, count=False)
            except MilvusUnavailableError:  # dropped since it was listed
                continue
            if manifest is None or (version and manifest.model_version != version):
                continue
            if gallery and manifest.gallery != gallery:
                continue
            found.append((manifest.created, name))
        return [name for _, name in sorted(found)]

    def check_spec(self, spec: IndexSpec) -> None:
        """IndexOperationError (409) when this Milvus cannot build the index kind (Milvus Lite: no IVF_PQ)."""
        if self._lock is not None and spec.kind not in LITE_INDEX_KINDS:
            raise IndexOperationError(
                f"Milvus Lite cannot build a {spec.kind} index (it has {', '.join(LITE_INDEX_KINDS)}); "
                "use a Milvus server (AESEEK_MILVUS_URI=http://host:19530) or another AESEEK_INDEX_KIND"
            )
        if spec.rerank_neighbours:
            raise IndexOperationError("re-ranking (AESEEK_RERANK_NEIGHBOURS) needs the FAISS backend")

    def create(
        self,
        manifest: Manifest,
        spec: IndexSpec,
        items: Sequence[GalleryItem],
        codes: np.ndarray,
        images: np.ndarray,
    ) -> str:
        """A new collection holding these items, indexed per `spec` (the manifest says so), loaded; returns its name."""
        name = self.create_empty(manifest.model_version, manifest.gallery, manifest.dim, spec, len(items))
        try:
            self.insert(name, items, codes, images)
            self.seal(name, manifest, spec)
        except BaseException:
            self.drop(name)  # never leave a half-filled collection behind
            raise
        return name

    def create_empty(self, model_version: str, gallery: str, dim: int, spec: IndexSpec, count: int) -> str:
        """An empty collection for a gallery of `count` items (filled by `insert`, then `seal`); returns its name."""
        self.check_spec(spec)
        name = f"{self.prefix}_{model_version}_{gallery}_{uuid.uuid4().hex[:8]}"
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("code", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("label", DataType.INT64)
        schema.add_field("split", DataType.VARCHAR, max_length=16)
        schema.add_field("position", DataType.INT64)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("image", DataType.VARCHAR, max_length=2 * IMAGE_SIDE * IMAGE_SIDE)  # base64 of 784 bytes
        index_type, params = build_params(spec, count)
        index = self.client.prepare_index_params()
        index.add_index(field_name="code", index_type=index_type, metric_type="L2", params=params)
        self._call("create_collection", name, schema=schema, index_params=index, consistency_level="Session")
        return name

    def seal(self, name: str, manifest: Manifest, spec: IndexSpec) -> None:
        """Flush a filled collection and write its manifest: from then on `open` and `collections` see it."""
        params = {key: value for key, value in spec.as_dict().items() if key != "kind"}
        manifest = replace(manifest, index_kind=spec.kind, index_params=params, count=0, files={})
        self._call("flush", name)
        self._call(
            "alter_collection_properties",
            name,
            properties={MANIFEST_PROPERTY: json.dumps(asdict(manifest)), NEXT_ID_PROPERTY: str(manifest.next_id)},
        )

    def insert(self, name: str, items: Sequence[GalleryItem], codes: np.ndarray, images: np.ndarray) -> None:
        """Insert items with their codes and images, in batches."""
        for start in range(0, len(items), INSERT_BATCH):
            rows = [
                {
                    "id": item.id,
                    "code": code,
                    "label": item.label,
                    "split": item.split,
                    "position": item.index,
                    "metadata": item.metadata or {},
                    "image": _encode_image(image),
                }
                for item, code, image in zip(
                    items[start : start + INSERT_BATCH],
                    codes[start : start + INSERT_BATCH].tolist(),
                    images[start : start + INSERT_BATCH],
                    strict=True,
                )
            ]
            self._call("insert", name, rows)

    def switch(self, gallery: str, name: str) -> None:
        """Point the gallery's alias at a collection (one atomic step for every reader)."""
        if self.active_collection(gallery) is None:
            self._call("create_alias", name, self.alias(gallery))
        else:
            self._call("alter_alias", name, self.alias(gallery))

    def drop(self, name: str) -> None:
        """Drop a collection (never the one an alias names: Milvus refuses that)."""
        self._call("drop_collection", name)

    def read_manifest(self, name: str, count: bool = True) -> Manifest | None:
        """A collection's manifest with its live count and next id, or None for a collection aeseek did not make."""
        try:
            properties = self._call("describe_collection", name).get("properties", {})
            raw = json.loads(properties[MANIFEST_PROPERTY])
            next_id = int(properties[NEXT_ID_PROPERTY])
        except (KeyError, ValueError):
            return None
        live = self.count(name) if count else raw["count"]
        return Manifest(**{**raw, "count": live, "next_id": next_id})

    def set_next_id(self, name: str, next_id: int) -> None:
        """Record the next fresh id of a collection (ids are never reused)."""
        self._call("alter_collection_properties", name, properties={NEXT_ID_PROPERTY: str(next_id)})

    def count(self, name: str) -> int:
        """The number of items a collection holds now."""
        [row] = self._call("query", name, filter="", output_fields=["count(*)"])
        return int(row["count(*)"])

    def query(self, name: str, expression: str, fields: list[str]) -> list[dict[str, Any]]:
        """Rows matching a filter expression (at most QUERY_BATCH)."""
        return list(self._call("query", name, filter=expression, output_fields=fields, limit=QUERY_BATCH))

    def scan(self, name: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row of a collection, in id order, in windows of ids (a window never holds more rows
        than one query returns, so no row is skipped; a limit alone returns an arbitrary subset)."""
        manifest = self.read_manifest(name, count=False)
        end = manifest.next_id if manifest is not None else 0
        for low in range(0, end, QUERY_BATCH):
            window = self.query(name, f"id >= {low} and id < {low + QUERY_BATCH}", fields)
            yield from sorted(window, key=lambda row: int(row["id"]))

    def search(
        self, name: str, queries: np.ndarray, k: int, spec: IndexSpec, expression: str = ""
    ) -> list[list[dict[str, Any]]]:
        """The k nearest rows of each query (squared L2 distances), with their item fields."""
        hits = self._call(
            "search",
            name,
            data=np.ascontiguousarray(queries, dtype=np.float32).tolist(),
            limit=k,
            filter=expression,
            output_fields=ITEM_FIELDS[1:],
            search_params=search_params(spec, k),
        )
        return [list(row) for row in hits]

    def delete(self, name: str, ids: Sequence[int]) -> None:
        """Delete items by id; returns once reads of this process no longer see them."""
        self._call("delete", name, ids=list(ids))
        # Session consistency covers a client's own inserts, not always its deletes: one Strong read
        # waits for Milvus's time tick to pass the delete, after which Session reads see it too.
        self._call(
            "query", name, filter=f"id in {list(map(int, ids))}", output_fields=["id"], consistency_level="Strong"
        )

    def open(self, name: str) -> MilvusGallery:
        """A gallery over one collection; GalleryError when it is not an aeseek gallery."""
        manifest = self.read_manifest(name)
        if manifest is None:
            raise GalleryError(f"Milvus collection {name} holds no aeseek gallery manifest")
        if manifest.format_version != FORMAT_VERSION:
            raise GalleryError(f"Milvus collection {name}: gallery format {manifest.format_version} is not current")
        return MilvusGallery(self, name, manifest)


class MilvusGallery(Gallery):
    """A gallery whose items, codes and images live in one Milvus collection (changes are in place)."""

    def __init__(self, store: MilvusStore, name: str, manifest: Manifest) -> None:
        self.store = store
        self.name = name
        self.manifest = manifest
        self.spec = IndexSpec(**{**manifest.index_params, "kind": manifest.index_kind})

    @property
    def items(self) -> list[GalleryItem]:
        """Every item, in id order (a full scan: for maps and rebuilds, not for queries)."""
        return [_item(row) for row in self.store.scan(self.name, ITEM_FIELDS)]

    @property
    def images(self) -> np.ndarray:
        """Every image, in id order (a full scan)."""
        rows = list(self.store.scan(self.name, ["id", "image"]))
        return np.stack([_decode_image(row["image"]) for row in rows]) if rows else np.zeros((0, 28, 28), np.uint8)

    def __len__(self) -> int:
        return self.store.count(self.name)

    def _rows(self, ids: Sequence[int], fields: list[str]) -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), QUERY_BATCH):
            chunk = ", ".join(str(int(i)) for i in ids[start : start + QUERY_BATCH])
            for row in self.store.query(self.name, f"id in [{chunk}]", ["id", *fields]):
                found[int(row["id"])] = row
        return found

    def item(self, item_id: int) -> GalleryItem | None:
        row = self._rows([item_id], ITEM_FIELDS[1:]).get(item_id)
        return None if row is None else _item(row)

    def image(self, item_id: int) -> np.ndarray | None:
        row = self._rows([item_id], ["image"]).get(item_id)
        return None if row is None else _decode_image(row["image"])

    def code(self, item_id: int) -> np.ndarray | None:
        row = self._rows([item_id], ["code"]).get(item_id)
        return None if row is None else np.asarray(row["code"], dtype=np.float32)

    def codes(self, ids: np.ndarray) -> np.ndarray:
        rows = self._rows([int(i) for i in ids], ["code"])
        return np.array([rows[int(i)]["code"] for i in ids], dtype=np.float32).reshape(len(ids), self.manifest.dim)

    def all_codes(self) -> tuple[np.ndarray, list[GalleryItem]]:
        rows = list(self.store.scan(self.name, [*ITEM_FIELDS, "code"]))
        codes = np.array([row["code"] for row in rows], dtype=np.float32).reshape(len(rows), self.manifest.dim)
        return codes, [_item(row) for row in rows]

    @property
    def labels(self) -> list[int]:
        return sorted({int(row["label"]) for row in self.store.scan(self.name, ["id", "label"])})

    def ids_with_label(self, label: int) -> np.ndarray:
        ids = [int(row["id"]) for row in self.store.scan(self.name, ["id", "label"]) if int(row["label"]) == label]
        if not ids:
            raise InvalidRequestError(f"label={label} is not a label of this gallery's items")
        return np.array(ids, dtype=np.int64)

    def search(self, queries: np.ndarray, k: int, label: int | None = None) -> list[list[Neighbour]]:
        expression = "" if label is None else f"label == {int(label)}"
        hits = self.store.search(self.name, queries, k, self.spec, expression)
        if label is not None and not any(hits) and not self.store.query(self.name, expression, ["id"]):
            raise InvalidRequestError(f"label={label} is not a label of this gallery's items")
        scale = self.manifest.distance_scale
        results = []
        for row in hits:
            found = []
            for rank, hit in enumerate(row, start=1):
                distance = float(np.sqrt(max(float(hit["distance"]), 0.0)))  # Milvus's L2 is squared
                fields = {**hit["entity"], "id": hit["id"]}
                found.append(Neighbour(rank, _item(fields), distance, similarity(distance, scale)))
            results.append(found)
        return results

    def with_added(
        self, codes: np.ndarray, labels: list[int], images: np.ndarray, metadata: list[dict[str, Any] | None]
    ) -> tuple[Gallery, list[GalleryItem]]:
        """Insert the images under fresh ids (into this collection: Milvus is the copy every process shares)."""
        manifest = self.store.read_manifest(self.name, count=False)
        first = manifest.next_id if manifest is not None else self.manifest.next_id
        added = [
            GalleryItem(first + i, "added", -1, int(label), extra)
            for i, (label, extra) in enumerate(zip(labels, metadata, strict=True))
        ]
        # The next id is recorded first: a crash between the two steps skips ids, never reuses one.
        self.store.set_next_id(self.name, first + len(added))
        self.store.insert(self.name, added, codes, images)
        return self, added

    def without(self, item_id: int) -> Gallery:
        """Delete one item from this collection."""
        self.store.delete(self.name, [item_id])
        return self

    def save(self, directory: Any) -> None:
        raise GalleryError("a Milvus gallery lives in Milvus; it is not saved to a directory")
