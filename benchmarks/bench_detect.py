"""Face detection speed: milliseconds per photo for tinyconv's MTCNN, and facenet-pytorch's MTCNN beside it.

Run from the project root:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_detect.py
Photos at 640x480 and 1280x960, each with one face (an LFW photo filling half the height) and with a group (seven
LFW faces of several sizes), composed from ../shared/data/faces/lfw. Defaults of both detectors (minimum face 20 px,
thresholds 0.6/0.7/0.7, factor 0.709). Each library runs in its own process (`--worker tinyconv|torch`), the two
alternating `--rounds` times; each reports the median of `--repeats` runs after a warm-up, and the best median of
the rounds is kept. The ratio is facenet-pytorch's time over ours (above 1: tinyconv is faster). Not a test.
"""
import os

# the thread settings tinyconv recommends; they must be in place before numpy / numba are imported
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "1")

import argparse                                          # noqa: E402
import importlib.metadata                                # noqa: E402
import json                                              # noqa: E402
import subprocess                                        # noqa: E402
import sys                                               # noqa: E402
import tempfile                                          # noqa: E402
import time                                              # noqa: E402
import types                                             # noqa: E402
from pathlib import Path                                 # noqa: E402

import numpy as np                                       # noqa: E402
from PIL import Image                                    # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "faces" / "lfw" / "lfw-deepfunneled"
GROUP = ["Aaron_Eckhart", "Angelina_Jolie", "Serena_Williams", "Michael_Jordan", "Paula_Zahn", "Rudolph_Giuliani",
         "Craig_Wilson"]
SIZES = [(640, 480), (1280, 960)]


def compose(width, height, group):
    """An RGB photo: one LFW photo filling half the height in the middle, or seven faces spread over the frame."""
    rng = np.random.default_rng(0)
    canvas = np.full((height, width, 3), 90, np.uint8) + rng.integers(0, 20, (height, width, 3), dtype=np.uint8)
    unit = height / 480
    places = [(20, 30, 150), (220, 60, 120), (400, 20, 180), (500, 250, 100), (60, 300, 90), (230, 220, 240),
              (520, 370, 100)] if group else [(200, 120, 240)]
    for person, (left, top, side) in zip(GROUP, places):
        left, top, side = int(left * unit), int(top * unit), int(side * unit)
        photo = Image.open(LFW / person / f"{person}_0001.jpg").convert("RGB").resize((side, side), Image.BILINEAR)
        canvas[top:top + side, left:left + side] = np.asarray(photo)
    return canvas


def median_ms(fn, repeats):
    """Median wall-clock and CPU (all threads of the process) milliseconds of fn() after a warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000 * float(np.median(wall)), 1000 * float(np.median(cpu))


def tinyconv_detector():
    sys.path.insert(0, str(ROOT))
    from tinyconv.faces import detect_faces
    return lambda rgb: len(detect_faces(rgb)), "tinyconv"


def torch_detector():
    """facenet-pytorch's MTCNN on the CPU. Its only use of torchvision is `batched_nms`; when torchvision cannot be
    imported, a Numba loop with torchvision's semantics stands in for it (said in the output)."""
    import torch
    torch.set_num_threads(2)
    note = ""
    try:
        import torchvision  # noqa: F401
    except Exception as e:  # ImportError, or the RuntimeError of a torchvision built for another torch
        _install_batched_nms(torch)
        note = (f" (torchvision unusable here: {e.__class__.__name__}: {str(e).splitlines()[-1][:80]}; "
                f"its batched_nms replaced by a Numba loop with the same semantics)")
    import facenet_pytorch
    detector = facenet_pytorch.MTCNN(device="cpu", keep_all=True)

    def detect(rgb):
        boxes, _ = detector.detect(Image.fromarray(rgb))
        return 0 if boxes is None else len(boxes)
    return detect, f"facenet-pytorch {importlib.metadata.version('facenet-pytorch')} on torch {torch.__version__}{note}"


def _install_batched_nms(torch):
    from numba import njit

    @njit(cache=True)
    def nms(boxes, scores, threshold):
        order = np.argsort(-scores, kind="mergesort")
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        removed = np.zeros(len(order), np.bool_)
        keep = []
        for a in range(len(order)):
            i = order[a]
            if removed[i]:
                continue
            keep.append(i)
            for b in range(a + 1, len(order)):
                j = order[b]
                w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
                h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
                if w > 0 and h > 0 and w * h / (area[i] + area[j] - w * h) > threshold:
                    removed[j] = True
        return np.array(keep, np.int64)

    def batched_nms(boxes, scores, idxs, threshold):
        if boxes.numel() == 0:
            return torch.empty((0,), dtype=torch.int64)
        shifted = boxes + idxs.to(boxes)[:, None] * (boxes.max() + 1)   # torchvision's trick: one NMS per index
        keep = nms(shifted.double().numpy(), scores.double().numpy(), float(threshold))
        return torch.from_numpy(keep)

    vision = types.ModuleType("torchvision")
    vision.ops = types.ModuleType("torchvision.ops")
    vision.ops.boxes = types.ModuleType("torchvision.ops.boxes")
    vision.ops.boxes.batched_nms = batched_nms
    vision.transforms = types.ModuleType("torchvision.transforms")
    vision.transforms.functional = types.ModuleType("torchvision.transforms.functional")
    sys.modules.update({"torchvision": vision, "torchvision.ops": vision.ops, "torchvision.ops.boxes": vision.ops.boxes,
                        "torchvision.transforms": vision.transforms,
                        "torchvision.transforms.functional": vision.transforms.functional})


def worker(kind, folder, repeats):
    """Time every photo in `folder` with one library; print one JSON line {photo: [ms, faces], "_name": ...}."""
    detect, name = tinyconv_detector() if kind == "tinyconv" else torch_detector()
    out = {"_name": name}
    for path in sorted(Path(folder).glob("*.png")):
        rgb = np.asarray(Image.open(path))
        out[path.stem] = [*median_ms(lambda: detect(rgb), repeats), detect(rgb)]
    print(json.dumps(out))


def run_worker(kind, folder, repeats):
    command = [sys.executable, __file__, "--worker", kind, "--folder", str(folder), "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1]), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", choices=["tinyconv", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.folder, args.repeats)
    if not LFW.is_dir():
        sys.exit(f"error: {LFW} not found (the LFW photos are needed to compose the test photos)")
    try:
        import threadpoolctl
        blas = [(i["internal_api"], i.get("architecture"), i["num_threads"]) for i in threadpoolctl.threadpool_info()]
    except ImportError:
        blas = "unknown (threadpoolctl is not installed)"
    print(f"BLAS: {blas}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as folder:
        for width, height in SIZES:
            for group in (False, True):
                name = f"{width}x{height}_{'group' if group else 'one'}"
                Image.fromarray(compose(width, height, group)).save(Path(folder) / f"{name}.png")
        best = {}
        errors = {}
        for _ in range(args.rounds):
            for kind in ("tinyconv", "torch"):
                result, error = run_worker(kind, folder, args.repeats)
                if error:
                    errors[kind] = error
                    continue
                for key, value in result.items():
                    if key == "_name" or key not in best.get(kind, {}) or value[0] < best[kind][key][0]:
                        best.setdefault(kind, {})[key] = value
    if "tinyconv" not in best:
        sys.exit(f"error: the tinyconv worker failed: {errors.get('tinyconv')}")
    theirs = best.get("torch")
    print(f"yardstick: {theirs['_name'] if theirs else 'facenet-pytorch could not run: ' + errors.get('torch', '?')}")
    print("milliseconds per photo, wall clock (and CPU time of all the process's threads)")
    print(f"{'photo':<20} {'faces':>5} {'tinyconv':>16} {'facenet-pytorch':>16} {'torch/ours':>10}")
    for key, value in best["tinyconv"].items():
        if key == "_name":
            continue
        ms, cpu, faces = value
        line = f"{key:<20} {faces:>5} {ms:7.1f} ({cpu:6.1f})"
        if theirs:
            ms_t, cpu_t, faces_t = theirs[key]
            line += f" {ms_t:7.1f} ({cpu_t:6.1f}) {ms_t / ms:10.2f}   (facenet-pytorch found {faces_t})"
        print(line)
    if os.getloadavg()[0] > 2.5:
        print(f"note: the machine was busy (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): "
              "repeat on a quiet machine before quoting the numbers")


if __name__ == "__main__":
    main()
