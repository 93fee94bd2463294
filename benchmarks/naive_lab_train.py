"""A lab-style training script, the baseline of benchmarks/train_process.py.

What students hand-tune: load the four npz files, fill NaNs, a DataLoader over CPU tensors,
per-batch ``.to(device)``, ``loss.item()`` every batch, train and held-out accuracy every epoch,
test accuracy at the end. It holds out 20% of the training set like `eegtune train`, so both
train on 864 trials and evaluate 216 per epoch.

    python benchmarks/naive_lab_train.py DATA_DIR EPOCHS
"""

from __future__ import annotations

import sys

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from eegtune.models.networks import EEGNet


def load(data_dir: str, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for subject in ("S4b", "X11b"):
        raw = np.load(f"{data_dir}/{subject}_{part}.npz")
        xs.append(raw["signal"])
        ys.append(raw["label"])
    x = np.expand_dims(np.concatenate(xs).transpose(0, 2, 1), 1)
    x = np.nan_to_num(x, nan=float(np.nanmean(x)))
    return torch.tensor(x, dtype=torch.float32), torch.tensor(np.concatenate(ys) - 1).long()


def main() -> None:
    data_dir, epochs = sys.argv[1], int(sys.argv[2])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x_all, y_all = load(data_dir, "train")
    xt, yt = load(data_dir, "test")
    torch.manual_seed(0)
    order = torch.randperm(len(y_all))
    n_val = len(y_all) // 5
    x, y = x_all[order[n_val:]], y_all[order[n_val:]]
    xv, yv = x_all[order[:n_val]], y_all[order[:n_val]]
    model = EEGNet(activation=nn.ELU, dropout=0.25)  # the class defaults to plain nn.Dropout
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    train_loader = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    val_loader = DataLoader(TensorDataset(xv, yv), batch_size=64)
    test_loader = DataLoader(TensorDataset(xt, yt), batch_size=64)

    def accuracy(loader: DataLoader) -> float:
        model.eval()
        correct = 0
        with torch.no_grad():
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                correct += (model(xb).argmax(1) == yb).sum().item()
        return correct / len(loader.dataset)

    for epoch in range(epochs):
        model.train()
        correct = 0
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            optimizer.step()
            loss.item()
            correct += (out.argmax(1) == yb).sum().item()
        print(f"epoch {epoch + 1}: train {correct / len(y):.3f} val {accuracy(val_loader):.3f}")
    print(f"test {accuracy(test_loader):.3f}")


if __name__ == "__main__":
    main()
