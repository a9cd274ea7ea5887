"""What the user-like uploads allow when labels are used: the default conv encoder trained to classify.

A diagnostic, not a model the service offers (the quality goals are label-free). The same
encoder (E1, 16-d code, stroke-pooled at query time) with a linear head is trained with
cross-entropy on the training split's labels, on the same distorted views as the default
training, then searched exactly as `aeseek eval --robustness` searches: P@10 per source and per
pen against the training gallery, beside the label-free model named. Where even this ceiling
stays under a goal, the uploads themselves (not the lack of labels) stand in the way.

    python scripts/labelled_ceiling.py --data-dir DIR --model VERSION [--epochs 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.bench.robustness import robustness_set
from app.services.evaluation import robustness_precision
from app.services.workspace import Workspace
from models.checkpoints import load_model
from models.data.augment import distort
from models.variants.conv import ConvAutoencoder, ConvConfig


def train_classifier(images: np.ndarray, labels: np.ndarray, epochs: int, batch: int = 128) -> ConvAutoencoder:
    """The default conv encoder and a linear head, trained on labelled distorted views."""
    torch.manual_seed(0)
    model = ConvAutoencoder(ConvConfig())
    head = nn.Linear(model.config.code_dim, 10)
    optimiser = torch.optim.Adam([*model.e1.parameters(), *head.parameters()], lr=1e-3)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
    for epoch in range(epochs):
        model.train()
        order, started, correct = torch.randperm(len(x_all)), time.perf_counter(), 0
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            x, y = model.prepare(x_all[index]), y_all[index]
            logits = head(model.encode(distort(x)))
            loss = F.cross_entropy(logits, y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            correct += int((logits.argmax(1) == y).sum())
        print(f"epoch {epoch + 1}: training accuracy on distorted views {correct / len(order):.4f}, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)  # fmt: skip
    return model.eval()


def main() -> int:
    """Train the ceiling, then print the robustness table beside the named label-free model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", required=True, help="the label-free model to show beside it")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(2)
    workspace = Workspace(args.data_dir)
    train, test = workspace.split("train"), workspace.split("test")
    ceiling = train_classifier(train.images, train.labels, args.epochs)
    label_free, record = load_model(workspace.models_dir / args.model)
    samples = robustness_set(test.images, test.labels)
    table = robustness_precision(
        workspace,
        [(f"label-free {record.version}", label_free), ("labelled ceiling (same encoder, labels)", ceiling)],
        [(s.source, s.label, s.data) for s in samples],
        groups=[s.group for s in samples],
    )
    columns = list(next(iter(table.values())))
    print("| method | " + " | ".join(f"P@10 {column}" for column in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for method, scores in table.items():
        print(f"| {method} | " + " | ".join(f"{scores[column]:.4f}" for column in columns) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
