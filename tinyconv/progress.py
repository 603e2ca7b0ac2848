"""Progress of long work on stderr: items or steps done, the rate, the time left, and a note (e.g. the loss).

`Progress(total, label)` rewrites one line in place, for many quick items (images encoded);
`Progress(total, label, lines=True)` prints one line per update, a log of slow steps (training, style transfer).
"""
import sys
import time


class Progress:
    """Call `.update(n, note)` after each chunk of n items (or `update(done=i, note=...)`), `.close()` at the end."""

    def __init__(self, total, label, unit="images", lines=False, stream=None):
        self.total, self.label, self.unit, self.lines = total, label, unit, lines
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self.start = time.perf_counter()

    @property
    def elapsed(self):
        """Seconds since the start."""
        return time.perf_counter() - self.start

    def update(self, n=1, note="", done=None):
        self.done = self.done + n if done is None else done
        elapsed = max(self.elapsed, 1e-9)
        per_item = elapsed / max(self.done, 1)
        rate = f"{1 / per_item:.1f} {self.unit}/s" if per_item < 1 else f"{per_item:.2f} s per {self.unit[:-1]}"
        eta = per_item * (self.total - self.done)
        line = (f"{self.label}: {self.done}/{self.total} {self.unit}, {rate}, ETA {int(eta // 60)}:{int(eta % 60):02d}"
                f"{'  ' + note if note else ''}")
        self.stream.write(line + "\n" if self.lines else f"\r{line}   ")
        self.stream.flush()

    def close(self):
        if self.done and not self.lines:
            self.stream.write("\n")
            self.stream.flush()
