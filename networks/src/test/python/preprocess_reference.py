"""Reference preprocessing for squall.networks.image tests: torchvision 0.14's ImageClassification
eval transform on PIL images, exactly as torchvision's model weights document it.

usage: preprocess_reference.py RESIZE CROP bilinear|bicubic OUT_DIR IMAGE...
Writes OUT_DIR/<image file name>.npy, a float32 [1, 3, CROP, CROP] array per image.
Run with Debian's /usr/bin/python3 (torch 1.13, torchvision 0.14, Pillow 9).
"""
import os
import sys

import numpy as np
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms._presets import ImageClassification


def main():
    resize, crop, interpolation, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    mode = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}[interpolation]
    transform = ImageClassification(crop_size=crop, resize_size=resize, interpolation=mode)
    for path in sys.argv[5:]:
        with Image.open(path) as image:
            tensor = transform(image.convert("RGB")).unsqueeze(0)
        np.save(os.path.join(out_dir, os.path.basename(path) + ".npy"), tensor.numpy().astype(np.float32))


if __name__ == "__main__":
    main()
