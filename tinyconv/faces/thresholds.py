"""The default preprocessing, and the distance threshold that goes with each preprocessing.

Measured on LFW (View 2: the pairs of pairs.txt, deep-funneled 250 px images, 10 folds) with the default
FaceNet weights, by `python -m tinyconv.faces evaluate --lfw ../shared/data/faces/lfw --preprocess P`:

| preprocessing        | pairs | 10-fold accuracy | AUC    | best threshold | accuracy with the course's 0.7 |
|----------------------|-------|------------------|--------|----------------|--------------------------------|
| mtcnn-flip (default) | 6,000 | 99.33% ± 0.38    | 0.9993 | 1.106          | 80.95%                         |
| mtcnn                | 6,000 | 99.13% ± 0.41    | 0.9991 | 1.119          | 79.20%                         |
| standardize-crop150  | 6,000 | 98.78% ± 0.51    | 0.9987 | 1.106          | 77.37%                         |
| standardize-crop160  | 6,000 | 98.55% ± 0.30    | 0.9980 | 1.118          | 74.88%                         |
| course-crop160       | 6,000 | 96.65% ± 0.98    | 0.9923 | 1.085          | 68.98%                         |
| course (whole image) | 6,000 | 71.08% ± 1.91    | 0.7884 | 0.962          | 59.78%                         |

(mtcnn: the MTCNN detector and FaceNet's crop; -flip: the normalised mean of the encodings of the face and its
mirror image; a face was found on 7,700 of the 7,701 images. crop150: the
central 150 px box, bilinear-resized to 160; crop160: the central 160 px, no resize; whole image: 250 px
nearest-resized to 160, so the face is small. An independent implementation measured 98.8%,
98.6% and 96.6% for the crops, 99.12% and 99.25% for MTCNN without and with the flip.)

The threshold of the already-cropped preprocessings is the best overall one (maximum accuracy over all 6,000
pairs); the 10-fold thresholds fall within 0.01 of it. The course's 0.7 suits its own 96 px face crops with
"course" preprocessing (camera_2 is 1.01 from kian, which an LFW threshold of ~1.1 would let in), so plain
"course" keeps it.

The detection preprocessings, the default, get a door's threshold instead: 0.95, where letting a stranger in
matters more than asking again. LFW's best-accuracy threshold with detection (about 1.1) sits where the closest
different-person pairs of LFW are (0.95-1.05), and the course's small photos bring strangers as close: camera_4
is 1.02 from kian. At 0.95 none of LFW's 3,000 different-person pairs is accepted with mtcnn-flip (one with mtcnn), and
95.6% of the 3,000 same-person pairs are (mtcnn 94.8%). `evaluate` prints the best
and the strict (at most 0.1% of strangers) thresholds of any preprocessing.
"""
COURSE_THRESHOLD = 0.7  # the course's threshold, for its 96 px face crops
FALSE_ACCEPT_RATE = 0.001  # the "strict" threshold of an evaluation accepts at most this share of strangers

DEFAULT_PREPROCESS = "mtcnn-flip"  # detection, with the mirror image: the best on LFW above
DOOR_THRESHOLD = 0.95  # the detection preprocessings' threshold (see above)

THRESHOLDS = {
    "mtcnn-flip": DOOR_THRESHOLD,
    "mtcnn": DOOR_THRESHOLD,
    "course": COURSE_THRESHOLD,
    "course-crop160": 1.085,
    "standardize-crop150": 1.106,
    "standardize-crop160": 1.118,
}


def same_person(distance, threshold):
    """The one decision rule everywhere (verify, who_is_it, identify, LFW): same person iff distance < threshold."""
    return distance < threshold


def default_threshold(preprocess):
    """The threshold for `preprocess`: measured above (a "-flip" variant not measured takes its base's), else
    the course's 0.7 for course-*, else standardize-crop150's."""
    for name in (preprocess, preprocess.removesuffix("-flip")):
        if name in THRESHOLDS:
            return THRESHOLDS[name]
    return COURSE_THRESHOLD if preprocess.startswith("course") else THRESHOLDS["standardize-crop150"]


# `cluster` links faces closer than this: the threshold of the best BCubed F of Chinese whispers on LFW images of
# pairs.txt (python scripts/cluster_lfw.py; README "Photo collections"). Linking chains faces, so it sits well
# below the verification threshold, and lower the more faces there are (crop150: best 0.90 on 1,068 images,
# 0.80 on 4,096).
CLUSTER_THRESHOLDS = {
    "mtcnn-flip": 0.80,           # all 7,701 images: BCubed F 0.949 (0.85 was best on the first 1,925)
    "standardize-crop150": 0.80,  # 4,096 images: BCubed F 0.951
}
CLUSTER_RATIO = 0.80 / 1.106  # others: their verification threshold times crop150's measured ratio


def cluster_threshold(preprocess):
    """The distance below which `cluster` links two faces: measured above (a variant with or without -flip
    takes the measured one's), else CLUSTER_RATIO x the verification threshold."""
    base = preprocess.removesuffix("-flip")
    for name in (preprocess, base, base + "-flip"):
        if name in CLUSTER_THRESHOLDS:
            return CLUSTER_THRESHOLDS[name]
    return round(CLUSTER_RATIO * default_threshold(preprocess), 3)
