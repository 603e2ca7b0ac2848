"""The default preprocessing and the distance threshold that goes with each preprocessing.

Measured on LFW (View 2, the 6,000 pairs of pairs.txt, deep-funneled images) with the default FaceNet weights:
`python -m tinyconv.faces evaluate --lfw ../shared/data/faces/lfw --preprocess P` prints the best overall
threshold (the one that maximises accuracy over all 6,000 pairs) and the 10-fold accuracy; the values are copied
here. The course's 0.7 suits its own 96 px images with "course" preprocessing; on LFW it is far too strict.
"""
COURSE_THRESHOLD = 0.7  # the course's threshold, for its 96 px face crops

DEFAULT_PREPROCESS = "standardize-crop150"

# preprocessing -> (best overall LFW threshold, 10-fold accuracy in %, AUC)
LFW_CALIBRATION = {
    "standardize-crop150": (1.10, 98.8, 0.998),
}


def default_threshold(preprocess):
    """The LFW-calibrated threshold for `preprocess`, or the course's 0.7 for preprocessings not measured."""
    return LFW_CALIBRATION[preprocess][0] if preprocess in LFW_CALIBRATION else COURSE_THRESHOLD
