"""The `aeseek` command line: train, index, evaluate, describe and serve."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from app.client import DEFAULT_URL, ClientError, answers_json, format_answers, search_images
from app.progress import TrainingBar
from app.rendering.plots import labelled_grid_png
from app.services.distributed import train_as_rank, train_model
from app.services.distributed_index import build_across
from app.services.evaluation import (
    VALIDATION_SEED,
    evaluate_and_record,
    feedback_precision,
    format_table,
    hardest_queries,
    held_out_count,
    robustness_precision,
    validation_scores,
)
from app.services.galleries import MilvusGalleryStore, milvus_store
from app.services.jobs.foreground import run_foreground_worker
from app.services.observability import configure_logging
from app.services.retention import collect
from app.services.workspace import GalleryChoice, Workspace, embed_images
from app.settings import Settings, get_settings, index_spec, reference_markdown, serve_worker_count
from index.backend import INDEX_KINDS, IndexSpec
from models.base import AutoencoderConfig
from models.checkpoints import list_models, load_model
from models.errors import AeseekError, InvalidRequestError, NotFoundError
from models.registry import DEFAULT_VARIANT, VARIANTS, build_model, check_size, config_from_dict, default_config
from models.storage import atomic_write_bytes
from models.summary import describe
from models.training.distributed import launched_rank

TRAINING_FLAGS = ("epochs", "batch_size", "lr", "seed", "train_subset")
BENCHMARKS = ("variants", "l2", "code-size", "vae", "overcomplete", "serve", "serve-matrix", "train", "index", "attack")


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def build_config(args: argparse.Namespace) -> AutoencoderConfig:
    """The variant's config: defaults, then --config JSON, then --set pairs, then flags."""
    raw: dict[str, Any] = default_config(args.variant).model_dump(mode="json")
    if args.config:
        raw.update(json.loads(Path(args.config).read_text()))
    for pair in args.set or []:
        key, separator, value = pair.partition("=")
        if not separator:
            raise InvalidRequestError(f"--set expects key=value, got {pair!r}")
        _set_dotted(raw, key, _parse_value(value))
    for flag in TRAINING_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            raw["training"][flag] = value
    raw["variant"] = args.variant
    if getattr(args, "seed_exact", False):
        if args.variant not in ("conv", "conv_vae"):
            raise InvalidRequestError("--seed-exact is the seed's conv autoencoder: use it with conv or conv_vae")
        # The chapter's E1 puts ReLU on the code and trains on plain reconstruction (no distorted views).
        raw["code_activation"] = "relu"
        if args.variant == "conv":
            raw.update(augment=False, contrastive=0.0, stroke_pooled_code=False)
    config = config_from_dict(raw)
    check_size(config)
    return config


def _workspace(settings: Settings) -> Workspace:
    return Workspace(settings.data_dir, settings.mnist_source)


def index_and_activate(
    settings: Settings,
    version: str,
    gallery: GalleryChoice | None = None,
    activate: bool = True,
    spec: IndexSpec | None = None,
    nproc: int = 1,
) -> str:
    """Embed the gallery with a model (with a progress bar), optionally make it active; returns where it went."""
    workspace, choice = _workspace(settings), gallery or settings.gallery
    spec = spec or index_spec(settings)
    milvus = (
        MilvusGalleryStore(workspace, choice, milvus_store(settings)) if settings.index_backend == "milvus" else None
    )
    if nproc > 1:
        print(f"indexing {choice} with {version} across {nproc} processes", file=sys.stderr)
        target = build_across(settings, version, choice, spec, nproc)
        directory = Path(target)
    else:
        images, _ = workspace.gallery_source(choice)
        with tqdm(total=len(images), unit="img", desc=f"indexing {choice} with {version}") as bar:
            if milvus is not None:
                target = milvus.build(version, spec, None, on_batch=bar.update)
            else:
                directory = workspace.build_gallery(version, choice, on_batch=bar.update, spec=spec)
                target = str(directory)
    if activate:
        with workspace.write_lock():  # serving processes change the active gallery under the same lock
            if milvus is not None:
                milvus.make_active(target)
            else:
                workspace.activate(version, directory)
    return target


def train_and_report(
    workspace: Workspace, config: AutoencoderConfig, run: str | None, dry_run: bool, nproc: int = 1
) -> str:
    """Train with a progress bar (across `nproc` processes, or as rank 0 of torchrun's) and print the
    new version; returns it."""
    print(f"training {config.variant}: {config.model_dump_json()}", file=sys.stderr)
    bar = TrainingBar()
    max_steps = 1 if dry_run else None
    try:
        if launched_rank() is None:
            record = train_model(workspace, config, nproc, on_progress=bar, run_name=run, max_steps=max_steps)
        else:
            _, record = train_as_rank(workspace, config, on_progress=bar, run_name=run, max_steps=max_steps)
    finally:
        bar.close()
    seconds = record.history.get("seconds", 0.0)
    print(f"saved model {record.version} ({record.parameters:,} parameters, {seconds:.0f} s)", file=sys.stderr)
    if not dry_run:  # every trained model carries its retrieval quality, as jobs' models do
        [row] = evaluate_and_record(workspace, record.version, on_stage=lambda stage: print(stage, file=sys.stderr))
        print(
            f"evaluated: P@10 {row.p_at_10:.4f}, mAP@100 {row.map_at_100:.4f}, "
            f"reconstruction MSE {row.reconstruction_mse:.4f} (stored in model.json)",
            file=sys.stderr,
        )
    return record.version


def command_train(args: argparse.Namespace, settings: Settings) -> int:
    config = build_config(args)
    rank = launched_rank()
    if args.nproc < 1:
        raise InvalidRequestError(f"--nproc must be at least 1, got {args.nproc}")
    if rank is not None and args.nproc != 1:
        raise InvalidRequestError(
            "--nproc starts processes of its own: under torchrun leave it out "
            "(torchrun's --nproc-per-node and --nnodes set the count)"
        )
    if rank is not None and rank > 0:  # one of torchrun's other ranks: trains beside rank 0, which reports
        train_as_rank(_workspace(settings), config, run_name=args.run, max_steps=1 if args.dry_run else None)
        return 0
    version = train_and_report(_workspace(settings), config, args.run, args.dry_run, args.nproc)
    if args.activate:
        index_and_activate(settings, version)
    print(version)
    return 0


def _active_version(settings: Settings) -> str | None:
    workspace = _workspace(settings)
    if settings.index_backend == "milvus":
        return MilvusGalleryStore(workspace, settings.gallery, milvus_store(settings)).active_version()
    pointer = workspace.active()
    return pointer.model_version if pointer else None


def _resolve_version(settings: Settings, version: str | None) -> str:
    if version:
        return version
    workspace = _workspace(settings)
    active = _active_version(settings)
    if active is not None:
        return active
    records = list_models(workspace.models_dir)
    if not records:
        raise NotFoundError("no trained model; run `aeseek train conv` first")
    return records[0].version


def command_index_build(args: argparse.Namespace, settings: Settings) -> int:
    version = _resolve_version(settings, args.model)
    spec = index_spec(settings.model_copy(update={"index_kind": args.index} if args.index else {}))
    if args.nproc < 1:
        raise InvalidRequestError(f"--nproc must be at least 1, got {args.nproc}")
    target = index_and_activate(
        settings, version, args.gallery, activate=not args.no_activate, spec=spec, nproc=args.nproc
    )
    print(target)
    return 0


def command_eval(args: argparse.Namespace, settings: Settings) -> int:
    workspace = _workspace(settings)
    version = _resolve_version(settings, args.model)
    if args.robustness:
        return _eval_robustness(args, workspace, version)
    if args.hardest:
        return _eval_hardest(args, workspace, version)
    if args.validation:
        return _eval_validation(args, workspace, version)
    if args.feedback:
        model, _ = load_model(workspace.models_dir / version)
        train, test = workspace.split("train"), workspace.split("test")
        print("embedding 70,000 images; simulating two rounds of feedback on 10,000 queries", file=sys.stderr)
        precisions = feedback_precision(
            embed_images(model, train.images), train.labels, embed_images(model, test.images), test.labels
        )
        print(json.dumps({"model": version, "p_at_10_by_round": precisions}) if args.json else
              "P@10 with relevance feedback (a user marks the true labels among the top 10): "
              + ", ".join(f"round {n}: {p:.4f}" for n, p in enumerate(precisions)))  # fmt: skip
        return 0

    def note(stage: str) -> None:
        print(stage, file=sys.stderr)

    rows = evaluate_and_record(workspace, version, not args.no_baselines, on_stage=note, rerank=args.rerank)
    models_end = 2 if args.rerank else 1  # the model's rows come first, then the baselines
    for other in reversed(args.also or []):  # beside the first model, before the baselines
        rows[models_end:models_end] = evaluate_and_record(workspace, other, on_stage=note, rerank=args.rerank)
    if args.json:
        print(json.dumps([row.as_dict() for row in rows], indent=2))
    else:
        print(format_table(rows))
    return 0


def _eval_validation(args: argparse.Namespace, workspace: Workspace, version: str) -> int:
    """Scores on a split of the training set (no test image), for each model named."""
    train = workspace.split("train")
    table = {}
    for name in [version, *(args.also or [])]:
        print(f"{name}: embedding the {len(train):,} training images", file=sys.stderr)
        model, record = load_model(workspace.models_dir / name)
        table[f"{record.variant} {name}"] = validation_scores(model, train.images, train.labels).as_dict()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print("| method (validation: the last training images query the others) | P@1 | P@10 | P@100 | mAP@100 |")
    print("|---|---:|---:|---:|---:|")
    for method, scores in table.items():
        print(f"| {method} | {scores['p_at_1']:.4f} | {scores['p_at_10']:.4f} | {scores['p_at_100']:.4f} | "
              f"{scores['map_at_100']:.4f} |")  # fmt: skip
    return 0


def _eval_hardest(args: argparse.Namespace, workspace: Workspace, version: str) -> int:
    """The protocol's hardest queries for a model, with their neighbours, as a PNG (and JSON with --json)."""
    model, _ = load_model(workspace.models_dir / version)
    train, test = workspace.split("train"), workspace.split("test")
    print("embedding 70,000 images; ranking the 10,000 queries by P@10", file=sys.stderr)
    hard = hardest_queries(
        embed_images(model, train.images), train.labels, embed_images(model, test.images), test.labels, args.hardest
    )
    rows = [
        (f"test {h.query}: {h.label}, P@10 {h.precision:.1f}\n{' '.join(map(str, h.neighbour_labels))}",
         [test.images[h.query], *train.images[h.neighbours]])
        for h in hard
    ]  # fmt: skip
    title = f"conv {version}: the {len(hard)} hardest of 10,000 test queries (query, then its 10 nearest)"
    out = args.out or Path(f"hardest-{version}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, labelled_grid_png(rows, title))
    if args.json:
        print(json.dumps([asdict(h) for h in hard]))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _eval_robustness(args: argparse.Namespace, workspace: Workspace, version: str) -> int:
    from app.bench.robustness import robustness_set

    versions = [version, *(args.also or [])]
    gallery = None
    if args.validation:  # no test digit: the training split's last images, re-rendered with another seed
        train = workspace.split("train")
        held_out = held_out_count(len(train))
        samples = robustness_set(train.images[-held_out:], train.labels[-held_out:], seed=VALIDATION_SEED)
        gallery = (train.images[:-held_out], train.labels[:-held_out])
    else:
        test = workspace.split("test")
        samples = robustness_set(test.images, test.labels)
    print(f"{len(samples)} uploads; models {versions}", file=sys.stderr)
    loaded = [load_model(workspace.models_dir / v) for v in versions]
    models = [(f"{record.variant} {record.version}", model) for model, record in loaded]
    uploads = [(s.source, s.label, s.data) for s in samples]
    groups = [f"{s.source}, digit {s.label}" if args.by_digit else s.group for s in samples]
    table = robustness_precision(workspace, models, uploads, groups=groups, gallery=gallery)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    sources = list(dict.fromkeys(s.source for s in samples))
    print("| method | " + " | ".join(f"P@10 {source}" for source in sources) + " |")
    print("|---|" + "---:|" * len(sources))
    for method, scores in table.items():
        print(f"| {method} | " + " | ".join(f"{scores[source]:.4f}" for source in sources) + " |")
    groups = sorted(name for name in next(iter(table.values())) if name not in sources)
    if groups:  # one row per pen or digit, a column per method
        print("\n| P@10 | " + " | ".join(table) + " |")
        print("|---|" + "---:|" * len(table))
        for group in groups:
            print(f"| {group} | " + " | ".join(f"{scores[group]:.4f}" for scores in table.values()) + " |")
    return 0


def command_models_describe(args: argparse.Namespace, settings: Settings) -> int:
    config = default_config(args.variant)
    print(f"{args.variant}: {config.model_dump_json()}\n")
    print(describe(build_model(config)))
    return 0


def command_models_list(args: argparse.Namespace, settings: Settings) -> int:
    workspace = _workspace(settings)
    active = _active_version(settings)
    for record in list_models(workspace.models_dir):
        marker = "*" if active == record.version else " "
        p10 = record.metrics.get("retrieval", {}).get("p_at_10")
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created))
        print(f"{marker} {record.version}  {record.variant:<10} {created}  P@10={p10 if p10 is not None else '-'}")
    return 0


def command_models_activate(args: argparse.Namespace, settings: Settings) -> int:
    index_and_activate(settings, args.version)
    print(f"active: {args.version}")
    return 0


def ensure_ready(settings: Settings) -> None:
    """First start: train the default model and build its gallery, with progress; later: nothing."""
    workspace = _workspace(settings)
    with workspace.write_lock("bootstrap"):  # replicas starting together: one trains, the others wait and find it
        if _active_version(settings) is None:
            _bootstrap(settings, workspace)


def _bootstrap(settings: Settings, workspace: Workspace) -> None:
    print("first start: training the default model and building its gallery", file=sys.stderr)
    started = time.perf_counter()
    raw = default_config(DEFAULT_VARIANT).model_dump(mode="json")
    overrides = json.loads(settings.bootstrap_config) if settings.bootstrap_config else {}
    for key, value in overrides.items():  # one level deep, so {"training": {"epochs": 1}} keeps the rest
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    version = train_and_report(workspace, config_from_dict(raw), run="bootstrap", dry_run=False)
    index_and_activate(settings, version)
    print(f"ready after {time.perf_counter() - started:.0f} s", file=sys.stderr)


def command_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.main import create_app
    from app.workers import serve_workers

    if settings.bootstrap:
        ensure_ready(settings)
    mismatch = _workspace(settings).active_mismatch()
    if mismatch is not None:
        print(f"aeseek: refusing to start: {mismatch}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {
        "host": args.host or settings.host,
        "port": args.port or settings.port,
        "log_level": settings.log_level,
        "log_config": None,  # keep our handlers (JSON with request ids when asked)
        "access_log": False,  # the RequestContext middleware logs each request with its id
    }
    if args.workers is not None:
        settings = settings.model_copy(update={"serve_workers": args.workers})
    workers = serve_worker_count(settings)
    if workers > 1:
        # Worker processes share the port (app/workers.py); each builds its own app (event loop,
        # micro-batcher, snapshot) from the environment, follows the others' changes through
        # active.json, and one of them runs the training worker (app/services/jobs/manager.py).
        os.environ["AESEEK_DATA_DIR"] = str(settings.data_dir)
        os.environ["AESEEK_SERVE_WORKERS"] = str(workers)  # each takes its share of the decode threads
        return serve_workers(options, workers, settings.serve_worker_hang_s)
    else:
        uvicorn.run(create_app(settings), **options)
    return 0


def command_worker(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        if stop.is_set():  # a second signal: stop now (the first lets a running job save its epoch)
            raise KeyboardInterrupt
        print(f"aeseek worker: {signal.Signals(signum).name}: stopping after the current step", file=sys.stderr)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    bootstrap = (lambda: ensure_ready(settings)) if settings.bootstrap else (lambda: None)
    run_foreground_worker(_workspace(settings), settings.train_threads, stop, bootstrap)
    return 0


def command_search(args: argparse.Namespace, settings: Settings) -> int:
    try:
        answers = search_images(args.url, args.images, args.k, args.api_key)
    except ClientError as error:
        print(f"aeseek: error: {error}", file=sys.stderr)
        return 1
    print(answers_json(answers) if args.json else format_answers(answers))
    return 0


def command_gc(args: argparse.Namespace, settings: Settings) -> int:
    removals = collect(_workspace(settings), settings.job_retention_days * 86400.0, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for removal in removals:
        print(f"{verb} {removal.path} ({removal.size:,} bytes): {removal.why}")
    print(f"{verb} {len(removals)} items, {sum(r.size for r in removals):,} bytes", file=sys.stderr)
    return 0


def command_settings(args: argparse.Namespace, settings: Settings) -> int:
    if args.markdown:
        print(reference_markdown(), end="")
    else:  # the effective settings, keys left out
        print(settings.model_dump_json(indent=2, exclude={"api_keys"}))
    return 0


def _process_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise InvalidRequestError(f"--nproc expects process counts like 1,2; got {text!r}")
    return counts


def _backends(text: str) -> list[str]:
    from app.bench.index_backends import BACKENDS

    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown or not chosen:
        raise InvalidRequestError(f"--backend takes a comma-separated list of {', '.join(BACKENDS)}; got {text!r}")
    return chosen


def command_bench(args: argparse.Namespace, settings: Settings) -> int:
    from app.bench import (
        assignments,
        attack,
        index_backends,
        index_scale,
        serve,
        serving_cost,
        training_processes,
        training_speed,
        variants,
    )
    from app.bench.common import Bench

    benchmarks: dict[str, Callable[[Bench], object]] = {
        "variants": lambda bench: variants.run_variants(bench, variants.known_variants(args.only)),
        "l2": assignments.l2_sweep,
        "code-size": assignments.code_size_sweep,
        "vae": assignments.vae_generation,
        "overcomplete": assignments.overcomplete,
        "serve": lambda bench: serving_cost.run_cost(bench, args.compare_with),
        "serve-matrix": serve.run_serve,
        "train": lambda bench: (
            training_processes.run_process_scaling(bench, _process_counts(args.nproc))
            if args.nproc
            else training_speed.run_training_speed(bench)
        ),
        "index": lambda bench: (
            index_backends.run_index_backends(
                bench,
                _backends(args.backend),
                args.milvus_uri or settings.milvus_uri or "http://127.0.0.1:19530",
                str(args.out / "milvus-lite.db"),
                args.max_size,
            )
            if args.backend
            else index_scale.run_index_scale(bench, args.max_size)
        ),
        "attack": lambda bench: attack.run_attack(bench, args.compare_with),
    }
    assert set(benchmarks) == set(BENCHMARKS)
    benchmarks[args.benchmark](Bench(_workspace(settings), args.out, quick=args.quick))
    print(f"results in {args.out}", file=sys.stderr)
    return 0


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 (one per core) or more")
    return value


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="aeseek", description=__doc__, formatter_class=formatter)
    parser.add_argument("--data-dir", type=Path, help="Data directory (default: AESEEK_DATA_DIR or ./var).")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="Train an autoencoder.", formatter_class=formatter)
    train.add_argument("variant", choices=sorted(VARIANTS), nargs="?", default=DEFAULT_VARIANT)
    defaults = default_config(DEFAULT_VARIANT).training
    train.add_argument("--epochs", type=int, help=f"Passes over the data (default {defaults.epochs}).")
    train.add_argument("--batch-size", type=int, help=f"Images per step (default {defaults.batch_size}).")
    train.add_argument("--lr", type=float, help=f"Peak learning rate (default {defaults.lr}).")
    train.add_argument("--seed", type=int, help=f"Random seed (default {defaults.seed}).")
    train.add_argument("--train-subset", type=int, help="Train on the first N images only.")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="Override a config field (JSON value).")
    train.add_argument("--config", help="A JSON file of config fields.")
    train.add_argument(
        "--run",
        "--run-name",  # under torchrun: its own parser takes `--run` for an abbreviation of its --run-path
        help="Name of the run: saves state after each epoch and resumes a stopped run.",
    )
    train.add_argument("--dry-run", action="store_true", help="Train one batch only (smoke test).")
    train.add_argument(
        "--seed-exact", action="store_true", help="conv: the seed's own config (a ReLU code; the default's is linear)."
    )
    train.add_argument("--activate", action="store_true", help="Build the gallery with the new model and activate it.")
    train.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="Processes to train across on this machine (DistributedDataParallel; 1: this process alone). "
        "Across machines, run `torchrun ... -m app.cli train` instead (docs/scaling.md).",
    )
    train.set_defaults(handler=command_train)

    index = commands.add_parser("index", help="Gallery index commands.").add_subparsers(
        dest="index_command", required=True
    )
    build = index.add_parser("build", help="Embed the gallery and write its index.", formatter_class=formatter)
    build.add_argument("--model", help="Model version (default: the active one, else the newest).")
    build.add_argument("--gallery", choices=["train", "test", "both"], help="MNIST splits (default: AESEEK_GALLERY).")
    build.add_argument("--no-activate", action="store_true", help="Write the index without activating it.")
    build.add_argument("--index", choices=INDEX_KINDS, help="Index type (default: AESEEK_INDEX_KIND).")
    build.add_argument("--nproc", type=int, default=1, help="Encode across this many processes (torchrun ranks).")
    build.set_defaults(handler=command_index_build)

    evaluate = commands.add_parser(
        "eval", help="Retrieval metrics on the official protocol.", formatter_class=formatter
    )
    evaluate.add_argument("--model", help="Model version (default: the active one).")
    evaluate.add_argument("--no-baselines", action="store_true", help="Skip raw pixels and PCA.")
    evaluate.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    evaluate.add_argument(
        "--feedback", action="store_true", help="P@10 after one and two rounds of simulated relevance feedback."
    )
    evaluate.add_argument(
        "--rerank", action="store_true", help="Also the same codes re-ranked (database augmentation, query expansion)."
    )
    evaluate.add_argument(
        "--robustness",
        action="store_true",
        help="P@10 per source of user-like uploads (app/bench/robustness.py); with --validation, made from the "
        "validation split's digits instead of the test set's.",
    )
    evaluate.add_argument(
        "--by-digit",
        action="store_true",
        help="--robustness: P@10 per source and digit instead of per pen (where a source's misses are).",
    )
    evaluate.add_argument(
        "--validation",
        action="store_true",
        help="Scores on a split of the training set (its last 10,000 images query the rest): for choosing settings.",
    )
    evaluate.add_argument("--also", action="append", metavar="VERSION", help="More models in the same table.")
    evaluate.add_argument(
        "--hardest", type=int, metavar="N", help="Draw the N hardest protocol queries and neighbours."
    )
    evaluate.add_argument("--out", type=Path, help="--hardest: where the PNG goes (default hardest-VERSION.png).")
    evaluate.set_defaults(handler=command_eval)

    models = commands.add_parser("models", help="Inspect and activate models.").add_subparsers(
        dest="models_command", required=True
    )
    describe_parser = models.add_parser("describe", help="Layers, shapes and parameters of a variant.")
    describe_parser.add_argument("variant", choices=sorted(VARIANTS))
    describe_parser.set_defaults(handler=command_models_describe)
    models.add_parser("list", help="Trained models, newest first; * marks the active one.").set_defaults(
        handler=command_models_list
    )
    activate = models.add_parser("activate", help="Index the gallery with a model and make it active.")
    activate.add_argument("version")
    activate.set_defaults(handler=command_models_activate)

    bench = commands.add_parser("bench", help="Measure: variants, chapter assignments.", formatter_class=formatter)
    bench.add_argument("benchmark", choices=BENCHMARKS)
    bench.add_argument("--out", type=Path, default=Path("docs/results"), help="Where results are written.")
    bench.add_argument("--quick", action="store_true", help="A smoke run: 1 epoch on 512 images.")
    bench.add_argument("--only", help="variants: a comma-separated subset.")
    bench.add_argument("--max-size", type=int, help="index: largest gallery (default: all of 60k, 1M, 10M).")
    bench.add_argument("--compare-with", type=Path, help="attack, serve: also measure this other checkout of aeseek.")
    bench.add_argument(
        "--backend", metavar="B,B,...", help="index: compare gallery backends (faiss,milvus-lite,milvus)."
    )
    bench.add_argument("--milvus-uri", help="index --backend milvus: the server (default AESEEK_MILVUS_URI or :19530).")
    bench.add_argument(
        "--nproc", metavar="N,N,...", help="train: images/s across these process counts (e.g. 1,2) instead."
    )
    bench.set_defaults(handler=command_bench)

    search = commands.add_parser(
        "search", help="Search a running service with images (a client over HTTP).", formatter_class=formatter
    )
    search.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="Image files to search with.")
    search.add_argument("--url", default=DEFAULT_URL, help="The service's base URL.")
    search.add_argument("-k", type=int, default=10, help="Neighbours per image.")
    search.add_argument("--json", action="store_true", help="Print the service's JSON answers.")
    search.add_argument("--api-key", help="A key, for services that close reads (AESEEK_REQUIRE_KEY_FOR_READS).")
    search.set_defaults(handler=command_search)

    gc_parser = commands.add_parser("gc", help="Delete what nothing uses: orphan galleries, old jobs, stale states.")
    gc_parser.add_argument("--dry-run", action="store_true", help="Only list what would be deleted.")
    gc_parser.set_defaults(handler=command_gc)

    settings_parser = commands.add_parser("settings", help="Show the effective settings (AESEEK_* variables).")
    settings_parser.add_argument("--markdown", action="store_true", help="Print the configuration reference instead.")
    settings_parser.set_defaults(handler=command_settings)

    serve = commands.add_parser("serve", help="Serve the HTTP API (trains and indexes on first start).")
    serve.add_argument("--host", help="Bind address (default: AESEEK_HOST).")
    serve.add_argument("--port", type=int, help="Port (default: AESEEK_PORT).")
    serve.add_argument(
        "--workers",
        type=_non_negative,
        help="Processes sharing the port, one per core for the most throughput (default: AESEEK_SERVE_WORKERS; "
        "0: one per core).",
    )
    serve.set_defaults(handler=command_serve)

    commands.add_parser(
        "worker",
        help="Run training jobs in the foreground: the one trainer of the data directory, for API replicas "
        "with AESEEK_RUN_TRAINER=false (first start: trains the default model, as serve does). SIGTERM: a "
        "running job stops at its next step, interrupted and resumable.",
    ).set_defaults(handler=command_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `aeseek` command."""
    args = _parser().parse_args(argv)
    settings = get_settings()
    if args.data_dir is not None:
        settings = settings.model_copy(update={"data_dir": args.data_dir})
    configure_logging(settings.log_level, settings.log_format == "json")
    try:
        return int(args.handler(args, settings))
    except (AeseekError, ValidationError) as error:
        print(f"aeseek: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aeseek: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
