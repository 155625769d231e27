"""Train the feature networks that ship with flow-images (run once; CPU, a few minutes).

    OMP_NUM_THREADS=1 python tools/train_feature_nets.py [--only digits|patches]

Writes packages/flow-images/src/flow_images/features/weights/{digits,patches}.safetensors with
the measured accuracies in their metadata, and prints them.

* ``digits``: classify the 10 digits on the train split (1,437 images; augmentation: random
  shifts of up to one pixel); test accuracy on the fixed held-out split (360 images).
* ``patches``: classify which of the six *training* photographs a 32x32 patch comes from
  (augmentation: horizontal flips). The generation task's test photographs are other
  photographs, on which a source label means nothing, so the honest held-out accuracy is on
  unseen *regions* of the training photographs: every pyramid level is cut into its left
  three quarters (train) and its right quarter (test), and patches are cut from each part
  separately, so no held-out pixel is ever seen in training. (The right quarter of the
  64-pixel level is narrower than a patch, so held-out patches come from the 256- and
  128-pixel levels.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from flow_images.data import load_dataset
from flow_images.data.patches import TRAIN_PHOTOGRAPHS, held_out_regions
from flow_images.features.net import FeatureNet
from flow_images.features.weights import WEIGHTS_DIR, save_feature_net

SEED = 0


def shift(x: Tensor, generator: torch.Generator) -> Tensor:
    """Shift each image by up to one pixel in each direction (edge padding)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    dy, dx = torch.randint(0, 3, (2, len(x)), generator=generator)
    h, w = x.shape[2:]
    return torch.stack([p[:, y : y + h, s : s + w] for p, y, s in zip(padded, dy, dx, strict=True)])


def flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Flip a random half of the images horizontally."""
    mask = torch.rand(len(x), generator=generator) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def accuracy(net: FeatureNet, x: Tensor, y: Tensor) -> float:
    net.eval()
    return float((net.predict(x) == y).float().mean())


def fit(net, x, y, augment, epochs, lr, batch_size=64):
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * ((len(x) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.cross_entropy(net(augment(x[idx], generator)), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        if epoch % 10 == 9 or epoch == epochs - 1:
            print(f"  epoch {epoch + 1:3d}  loss {total / len(x):.4f}", flush=True)


def digits_data():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    return train.images, train.labels, test.images, test.labels


RECIPES = {
    "digits": {
        "data": digits_data,
        "channels": 1,
        "classes": 10,
        "widths": (32, 64),
        "augment": shift,
        "augmentation": "random shifts of up to 1 pixel (replicate padding)",
        "epochs": 40,
        "lr": 3e-3,
        "objective": "classify the 10 digits",
        "test_split": "the fixed held-out digits test split (stratified 20 %, seed 0)",
    },
    "patches": {
        "data": held_out_regions,
        "channels": 3,
        "classes": len(TRAIN_PHOTOGRAPHS),
        "widths": (32, 64, 64),
        "augment": flip,
        "augmentation": "random horizontal flips",
        "epochs": 30,
        "lr": 3e-3,
        "objective": "classify the source photograph among: " + ", ".join(TRAIN_PHOTOGRAPHS),
        "test_split": (
            "patches of the right quarter of every pyramid level of the training photographs, "
            "cut separately from the left three quarters used for training (no shared pixels)"
        ),
    },
}


def train_one(name: str, out: Path) -> dict:
    recipe = RECIPES[name]
    torch.manual_seed(SEED)
    xtr, ytr, xte, yte = recipe["data"]()
    net = FeatureNet(recipe["channels"], recipe["classes"], recipe["widths"])
    params = sum(p.numel() for p in net.parameters())
    print(f"{name}: {len(xtr)} train / {len(xte)} test images, {params} parameters", flush=True)
    start = time.perf_counter()
    fit(net, xtr, ytr, recipe["augment"], recipe["epochs"], recipe["lr"])
    info = {
        "dataset": name,
        "objective": recipe["objective"],
        "test_split": recipe["test_split"],
        "augmentation": recipe["augmentation"],
        "epochs": recipe["epochs"],
        "batch_size": 64,
        "optimizer": f"AdamW, one-cycle lr max {recipe['lr']}, weight decay 1e-4",
        "seed": SEED,
        "train_size": len(xtr),
        "test_size": len(xte),
        "train_accuracy": accuracy(net, xtr, ytr),
        "test_accuracy": accuracy(net, xte, yte),
        "train_seconds": round(time.perf_counter() - start, 1),
        "torch_version": torch.__version__,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.safetensors"
    save_feature_net(net, path, info)
    size_kb = Path(path).stat().st_size / 1024
    print(
        f"{name}: train accuracy {info['train_accuracy']:.4f}, test accuracy "
        f"{info['test_accuracy']:.4f} ({info['train_seconds']} s) -> {path} ({size_kb:.0f} KiB)"
    )
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(RECIPES), help="train one network only")
    parser.add_argument(
        "--out", type=Path, default=WEIGHTS_DIR, help="output folder (default: the package's)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in [args.only] if args.only else list(RECIPES):
        train_one(name, args.out)


if __name__ == "__main__":
    main()
