#!/usr/bin/env python3
"""PyTorch trainer for the example churn model: a Quiver training job.

Reads the dataset snapshot in $QUIVER_DATASET_DIR with pyarrow (its manifest.json says which
columns are features, in the feature service's order), trains a small MLP on CUDA when it is
available (CPU otherwise), appends one JSON metric line per epoch to $QUIVER_METRICS_FILE, and
exports $QUIVER_OUTPUT_DIR/model.onnx: input "features" [N, F] float32 of raw feature values
(NaN for missing), output "score" [N, 1] — the same contract as the Go trainer, so serving
treats both alike.

Features and the label must be integer, float or bool columns: any other (string, bytes,
timestamp, list) is refused with an error naming it.

Job definition: command: ["python3", "train_torch.py"]; needs torch, pyarrow and onnx.
Params ($QUIVER_PARAMS): epochs, hidden, lr, label.
"""
import json
import os
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import nn


def trainable(t):
    """Whether a column of Arrow type t can be read as a number: integers, floats, bools."""
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def load(dataset_dir, label):
    with open(os.path.join(dataset_dir, "manifest.json")) as f:
        manifest = json.load(f)
    features = [c["name"] for c in manifest["schema"] if c["role"] == "feature"]
    tables = [pq.read_table(os.path.join(dataset_dir, f["path"])) for f in manifest["files"]]
    # Refused, not encoded: a category needs an encoding chosen for it, and serving must apply
    # the same one — do it upstream (e.g. an on-demand view).
    schema = pq.read_schema(os.path.join(dataset_dir, manifest["files"][0]["path"])) if manifest["files"] else None
    for name in features + [label]:
        if schema is None:
            break
        if schema.get_field_index(name) < 0:
            sys.exit(f"train_torch: dataset has no column {name!r} (set the label param)")
        t = schema.field(name).type
        if not trainable(t) and name == label:
            sys.exit(f"train_torch: label column {name!r} is {t}: train_torch takes an integer, float or bool label "
                     "(1 or true is the positive class)")
        if not trainable(t):
            sys.exit(f"train_torch: feature column {name!r} is {t}: train_torch trains on integer, float and bool "
                     "features only; leave it out of the feature service, or encode it as a number upstream")
    cols = {name: [] for name in features + [label]}
    for t in tables:
        for name in cols:
            cols[name].extend(t.column(name).to_pylist())
    rows = [i for i, y in enumerate(cols[label]) if y is not None]
    nan = float("nan")
    x = torch.tensor([[nan if cols[f][i] is None else float(cols[f][i]) for f in features] for i in rows])
    y = torch.tensor([[float(cols[label][i])] for i in rows])
    return x, y, features


class Churn(nn.Module):
    """Imputes NaN with the training mean, standardizes, then MLP + sigmoid."""

    def __init__(self, mean, std, hidden):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.net = nn.Sequential(nn.Linear(len(mean), hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x):
        x = torch.where(torch.isnan(x), self.mean, x)
        return torch.sigmoid(self.net((x - self.mean) / self.std))


def main():
    params = {"epochs": 30, "hidden": 8, "lr": 0.05, "label": "churned"}
    params.update(json.loads(os.environ.get("QUIVER_PARAMS", "{}")))
    dataset_dir, out_dir = os.environ["QUIVER_DATASET_DIR"], os.environ["QUIVER_OUTPUT_DIR"]
    metrics = open(os.environ["QUIVER_METRICS_FILE"], "a", buffering=1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        print(f"train_torch: CUDA on {torch.cuda.get_device_name(0)}", flush=True)

    x, y, features = load(dataset_dir, params["label"])
    holdout = torch.arange(len(y)) % 5 == 4
    tr_x, tr_y, va_x, va_y = x[~holdout], y[~holdout], x[holdout], y[holdout]
    mean = torch.nanmean(tr_x, dim=0)
    std = torch.sqrt(torch.nanmean((tr_x - mean) ** 2, dim=0)).clamp_min(1e-9)
    torch.manual_seed(7)
    model = Churn(mean, std, int(params["hidden"])).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=float(params["lr"]))
    loss_fn = nn.BCELoss()
    tr_x, tr_y, va_x, va_y = tr_x.to(device), tr_y.to(device), va_x.to(device), va_y.to(device)
    started = time.time()
    for epoch in range(1, int(params["epochs"]) + 1):
        model.train()
        opt.zero_grad()
        p = model(tr_x)
        loss = loss_fn(p, tr_y)
        loss.backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            vp = model(va_x)
            vloss = loss_fn(vp, va_y).item()
            acc = ((p >= 0.5) == (tr_y >= 0.5)).float().mean().item()
            vacc = ((vp >= 0.5) == (va_y >= 0.5)).float().mean().item()
        for key, value in (("loss", loss.item()), ("accuracy", acc), ("val_loss", vloss), ("val_accuracy", vacc)):
            metrics.write(json.dumps({"key": key, "value": value, "step": epoch}) + "\n")
        if epoch == 1 or epoch % 10 == 0:
            print(f"epoch {epoch:3d}  loss {loss.item():.4f}  val_loss {vloss:.4f}  val_acc {vacc:.3f}", flush=True)
    print(f"train_torch: {time.time() - started:.2f}s on {device}", flush=True)

    model = model.to("cpu").eval()
    torch.onnx.export(model, torch.zeros(1, len(features)), os.path.join(out_dir, "model.onnx"),
                      input_names=["features"], output_names=["score"],
                      dynamic_axes={"features": {0: "batch"}, "score": {0: "batch"}}, opset_version=13)
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump({"inputs": features, "input_name": "features", "output_name": "score", "device": device, "params": params}, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
