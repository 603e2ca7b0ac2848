"""What the SHA-256 check of every array costs when a weights file is read (tinyconv/weights/format.py).

Reads each converted file of $TINYCONV_HOME/weights with `read_state` (which checks every array against the
SHA-256 recorded when the file was written), then times the hashing alone on the arrays it returned; median of
5 runs. The files must be fetched first (python -m tinyconv.weights fetch all).

    python benchmarks/bench_weights.py
"""
import statistics
import time

from tinyconv.weights import fetch, format


def main():
    for name in ("facenet", "vgg16"):
        path = fetch.weights_path(name)
        if not path.is_file():
            print(f"{name}: {path} not fetched (python -m tinyconv.weights fetch {name})")
            continue
        reads, hashes = [], []
        for _ in range(5):
            start = time.perf_counter()
            state, _ = format.read_state(path)
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            for value in state.values():
                format.checksum(value)
            hashes.append(time.perf_counter() - start)
        megabytes = sum(v.nbytes for v in state.values()) / 1e6
        read, digest = statistics.median(reads), statistics.median(hashes)
        print(f"{name}: {len(state)} arrays, {megabytes:.1f} MB: read_state {read:.2f} s, of which SHA-256 "
              f"{digest:.2f} s ({megabytes / digest:.0f} MB/s, {100 * digest / read:.0f}% of the read)")


if __name__ == "__main__":
    main()
