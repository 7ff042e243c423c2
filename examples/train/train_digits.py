"""Trains the small offline model that `squall classify` uses when no other model is given.

MobileNet V1 (alpha 0.25, 10 classes) on scikit-learn's handwritten digits (1,797 8x8 images),
each scaled up to an R x R RGB image. The model sees exactly the tensor Squall's Classify
pipeline makes from such a PNG: uint8 RGB -> float / 255 -> (x - mean) / std, with
resize = crop = R so that the resize step changes nothing.

Run from the repository root with Debian's Python (it has torch, sklearn, PIL):

    /usr/bin/python3 examples/train/train_digits.py

It writes into examples/src/main/resources/squall/digits/:
    model.safetensors      F32, torch state_dict names (no num_batches_tracked)
    labels.txt             one label per line, "0".."9"
    model.properties       what Classify needs to rebuild the network and the preprocessing
    heldout-images.npy     uint8 [M,R,R] grayscale held-out images, as fed to the model
    heldout-labels.npy     int64 [M]
    heldout-pytorch.npy    float32 [M,10] PyTorch's logits for them (eval mode)
and one held-out sample per digit into examples/samples/digit-<label>-<index>.png, where
<index> is the row of that image in heldout-images.npy. Seeds are fixed and torch uses 2
threads, so running it again on the same machine writes the same files.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "networks", "src", "test", "python"))
from mobilenet_v1 import mobilenet_v1  # noqa: E402

RESOURCES = os.path.join(ROOT, "examples", "src", "main", "resources", "squall", "digits")
SAMPLES = os.path.join(ROOT, "examples", "samples")

RESOLUTION = 64          # MobileNet V1 downsamples 32x: a 2x2 map before the pooling
ALPHA = 0.25
CLASSES = 10
MEAN = (0.485, 0.456, 0.406)   # ImageNet's, as most checkpoints Squall runs expect
STD = (0.229, 0.224, 0.225)
SEED = 0
EPOCHS = 20
BATCH = 64
MAX_SHIFT = 6            # pixels at R=64, less than one source pixel (8)


def upscale(digit):
    """8x8 values 0..16 -> R x R uint8 grayscale, the way a scanner-free PNG of it would look."""
    small = Image.fromarray(np.round(digit * 255.0 / 16.0).astype(np.uint8), mode="L")
    return np.asarray(small.resize((RESOLUTION, RESOLUTION), Image.BILINEAR), dtype=np.uint8)


def to_input(gray):
    """uint8 [N,R,R] grayscale -> float [N,3,R,R], as Classify makes from the RGB PNG."""
    x = torch.from_numpy(gray).float().div(255.0).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def shift(gray, generator):
    """Random shifts of up to MAX_SHIFT pixels, filling with the background (0)."""
    n = gray.shape[0]
    padded = F.pad(gray, (MAX_SHIFT,) * 4)
    dx = torch.randint(0, 2 * MAX_SHIFT + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * MAX_SHIFT + 1, (n,), generator=generator)
    return torch.stack([padded[i, dy[i]:dy[i] + RESOLUTION, dx[i]:dx[i] + RESOLUTION] for i in range(n)])


def train(model, images, labels):
    generator = torch.Generator().manual_seed(SEED)
    gray = torch.from_numpy(images)
    targets = torch.from_numpy(labels)
    steps = EPOCHS * ((len(images) + BATCH - 1) // BATCH)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps)
    for epoch in range(EPOCHS):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for start in range(0, len(images), BATCH):
            idx = order[start:start + BATCH]
            x = to_input(shift(gray[idx], generator).numpy())
            loss = F.cross_entropy(model(x), targets[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:2d}/{EPOCHS}  loss {total / len(images):.4f}", flush=True)


def write_safetensors(path, state):
    """safetensors: 8-byte little-endian header length, JSON header, then the raw tensors."""
    header, blobs, offset = {}, [], 0
    for name in sorted(state):
        data = state[name].detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(state[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)   # keeps the tensors 8-byte aligned for memory mapping
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def write_resources(model, heldout_images, heldout_labels, logits):
    os.makedirs(RESOURCES, exist_ok=True)
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    write_safetensors(os.path.join(RESOURCES, "model.safetensors"), state)
    with open(os.path.join(RESOURCES, "labels.txt"), "w") as f:
        f.write("".join(f"{c}\n" for c in range(CLASSES)))
    with open(os.path.join(RESOURCES, "model.properties"), "w") as f:
        f.write("# Written by examples/train/train_digits.py: MobileNet V1 on scikit-learn's digits.\n"
                f"network=mobilenet_v1\nwidth={ALPHA}\nclasses={CLASSES}\n"
                f"resize={RESOLUTION}\ncrop={RESOLUTION}\ninterpolation=bilinear\n"
                f"mean={','.join(map(str, MEAN))}\nstd={','.join(map(str, STD))}\n")
    np.save(os.path.join(RESOURCES, "heldout-images.npy"), heldout_images)
    np.save(os.path.join(RESOURCES, "heldout-labels.npy"), heldout_labels.astype(np.int64))
    np.save(os.path.join(RESOURCES, "heldout-pytorch.npy"), logits.astype(np.float32))


def write_samples(heldout_images, heldout_labels):
    os.makedirs(SAMPLES, exist_ok=True)
    for old in os.listdir(SAMPLES):
        if old.startswith("digit-") and old.endswith(".png"):
            os.remove(os.path.join(SAMPLES, old))
    for label in range(CLASSES):
        index = int(np.flatnonzero(heldout_labels == label)[0])
        rgb = np.repeat(heldout_images[index][:, :, None], 3, axis=2)
        Image.fromarray(rgb, mode="RGB").save(os.path.join(SAMPLES, f"digit-{label}-{index}.png"))


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    digits = load_digits()
    images = np.stack([upscale(d) for d in digits.images])
    train_x, test_x, train_y, test_y = train_test_split(
        images, digits.target, test_size=0.2, stratify=digits.target, random_state=SEED)

    model = mobilenet_v1(alpha=ALPHA, num_classes=CLASSES)
    train(model, train_x, train_y.astype(np.int64))

    model.eval()
    with torch.no_grad():
        logits = model(to_input(test_x)).numpy()
    accuracy = float((logits.argmax(1) == test_y).mean())
    print(f"held-out accuracy {accuracy:.4f} ({int((logits.argmax(1) == test_y).sum())}/{len(test_y)})")

    write_resources(model, test_x, test_y, logits)
    write_samples(test_x, test_y)


if __name__ == "__main__":
    main()
