"""One progress line on stderr for long loops: items done, rate and time left, rewritten in place."""
import sys
import time


class Progress:
    """`Progress(total, "encoding")`, then `.update(n)` after each chunk of n items and `.close()` at the end."""

    def __init__(self, total, label, unit="images", stream=None):
        self.total, self.label, self.unit = total, label, unit
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.start = time.perf_counter()

    def update(self, n):
        self.done += n
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        self.stream.write(f"\r{self.label}: {self.done}/{self.total} {self.unit}, {rate:.1f} {self.unit}/s, "
                          f"ETA {eta:.0f} s   ")
        self.stream.flush()

    def close(self):
        if self.done:
            self.stream.write("\n")
            self.stream.flush()
