"""Style transfer end to end: the gradient of the total cost, the optimisers, coarse to fine, and the command line
with its failures.

The command-line runs use a VGG16 weights file of random weights written by the test (no download needed); the
real weights are used where noted, and those tests skip when they are absent.
"""
import tracemalloc

import numpy as np
import pytest

from tinyconv import gradcheck, weights
from tinyconv.files import load_image, save_image
from tinyconv.models.vgg import VGG, vgg16
from tinyconv.style import STYLE_LAYERS
from tinyconv.style.__main__ import main, plan_memory
from tinyconv.style.images import match_colours, match_histograms, transfer_luminance
from tinyconv.style.optimisation import (StyleTransfer, coarse_to_fine, memory_estimate, pyramid, run_adam,
                                         run_lbfgs, scale_iterations)
from tinyconv.weights.architectures import ARCHITECTURES

RNG = np.random.default_rng(0)
CONTENT = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
STYLE = RNG.integers(0, 256, (20, 20, 3), dtype=np.uint8)


def small_problem(model, content_weight=10.0, style_weight=40.0, tv_weight=0.1):
    return StyleTransfer(model, model.preprocess(CONTENT[:16, :16]), [model.preprocess(STYLE[:16, :16])],
                         "block4_conv2", STYLE_LAYERS, content_weight, style_weight, tv_weight)


def check_total_cost_gradient(model):
    """dJ/d(image) of the whole cost (content + 5 style layers to block5_conv1 + TV) against central differences."""
    model.astype(np.float64)
    problem = small_problem(model)
    x = model.preprocess(np.random.default_rng(1).uniform(0, 255, (16, 16, 3)))
    assert x.dtype == np.float64
    assert gradcheck(lambda g: problem.costs(g)[0], x, samples=60, atol=1e-6, rtol=1e-4)


def test_total_cost_gradcheck_random_vgg():
    np.random.seed(0)
    check_total_cost_gradient(VGG())


def test_total_cost_gradcheck_real_vgg16(weights_file):
    check_total_cost_gradient(vgg16(weights_file("vgg16")))


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_optimisers_lower_the_cost(optimizer):
    np.random.seed(0)
    model = VGG()
    problem = small_problem(model)
    x0 = model.preprocess(CONTENT[:16, :16])
    start = problem.loss_and_grad(x0)[0]
    seen = []
    if optimizer == "lbfgs":
        best = run_lbfgs(problem, x0, 5, lambda i, parts: seen.append(i))
    else:
        best = run_adam(problem, x0, 5, 2.55, lambda i, parts: seen.append(i))
        rgb = model.deprocess(best)   # Adam clips the pixels to 0..255
        assert rgb.min() >= -1e-3 and rgb.max() <= 255 + 1e-3
    assert seen == [1, 2, 3, 4, 5]
    assert problem.best_cost < start and best is problem.best


def test_pyramid_halves_down_to_the_smallest_useful_size():
    assert pyramid(384, 512, 3) == [(96, 128), (192, 256), (384, 512)]
    assert pyramid(384, 512, 1) == [(384, 512)]
    assert pyramid(48, 64, 3) == [(48, 64)]                  # 24x32 would be under 32 px: left out
    assert pyramid(24, 32, 2) == [(24, 32)]                  # the requested size always runs
    assert scale_iterations(20, 3) == [80, 40, 20] and scale_iterations(7, 1) == [7]


def test_coarse_to_fine_starts_each_scale_from_the_last_result():
    np.random.seed(0)
    model = VGG()
    content = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    seen = []

    def problem_at(h, w):
        from tinyconv.style.images import resize
        small = model.preprocess(resize(content, h, w))
        return StyleTransfer(model, small, [small], "block4_conv2", STYLE_LAYERS, 1.0, 1e-3, 0.1)

    def optimise(problem, x0, n, k):
        seen.append((k, x0.shape, n, model.deprocess(x0).copy()))
        run_lbfgs(problem, x0, n)

    last = coarse_to_fine(model, content, [(32, 32), (64, 64)], [4, 2], problem_at, optimise)
    assert [(k, shape, n) for k, shape, n, _ in seen] == [(0, (1, 32, 32, 3), 4), (1, (1, 64, 64, 3), 2)]
    assert last.best.shape == (1, 64, 64, 3)
    # the fine scale starts from the coarse result, not from the content image
    assert np.abs(seen[1][3] - content).mean() > 1


def test_memory_estimate_grows_with_the_image():
    model = VGG()
    layers = ["block4_conv2"] + [name for name, _ in STYLE_LAYERS]
    small, large = memory_estimate(model, 256, 256, layers), memory_estimate(model, 512, 512, layers)
    # per-pixel parts scale 4x; the fixed part (weights, interpreter) stays
    fixed = memory_estimate(model, 0, 0, layers)
    assert large - fixed == pytest.approx(4 * (small - fixed))
    assert fixed >= sum(p.data.nbytes for p in model.parameters())


def test_memory_estimate_counts_what_an_evaluation_allocates():
    """Between two sizes, the peak of NumPy allocations during an evaluation (traced) grows by no more than the
    estimate's per-pixel part says (whole graph and one block at a time); the fixed part covers the rest."""
    np.random.seed(0)
    model, rng = VGG(), np.random.default_rng(7)
    layers = ["block4_conv2"] + [name for name, _ in STYLE_LAYERS]
    peaks, estimates = {}, {}
    for height, width in [(48, 64), (96, 128)]:
        image = lambda: model.preprocess(rng.uniform(0, 255, (height, width, 3)))   # noqa: E731
        problem, x = StyleTransfer(model, image(), [image()], layers[0], STYLE_LAYERS, 1.0, 1e-3, 2.0), image()
        problem.loss_and_grad(x)                         # once before tracing: kernels compiled, caches filled
        for segmented in (False, True):
            problem.segmented = segmented
            tracemalloc.start()
            try:
                problem.loss_and_grad(x)
                peaks[height, segmented] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            estimates[height, segmented] = memory_estimate(model, height, width, layers, history=0,
                                                           segmented=segmented)
    for segmented in (False, True):
        assert peaks[96, segmented] - peaks[48, segmented] <= estimates[96, segmented] - estimates[48, segmented]
        assert peaks[48, segmented] <= estimates[48, segmented] and peaks[96, segmented] <= estimates[96, segmented]


def test_plan_memory_chooses_the_block_mode_per_scale():
    model, layers = VGG(), ["block4_conv2"] + [name for name, _ in STYLE_LAYERS]
    scales = [[(384, 512)], [(768, 1024), (800, 1000)]]          # per scale: its image, then its style images
    need = {(h, w, s): memory_estimate(model, h, w, layers, segmented=s)
            for h, w in [(384, 512), (768, 1024), (800, 1000)] for s in (False, True)}
    large = need[800, 1000, True]                # one block at a time, the largest shape of the large scale
    assert need[384, 512, False] < large < need[768, 1024, False]
    assert plan_memory(model, scales, layers, 1e3) == ([False, False], need[800, 1000, False])
    # the small scale fits whole, the large one only one block at a time; then nothing fits
    assert plan_memory(model, scales, layers, large / 2 ** 30) == ([False, True], large)
    # refused: what the whole run would need (its largest scale one block at a time), not the first scale's need
    assert plan_memory(model, scales, layers, need[384, 512, True] / 2 / 2 ** 30) == (None, large)


def test_transfer_luminance_keeps_the_content_colours():
    to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    styled = np.random.default_rng(3).uniform(0, 255, CONTENT.shape)
    out = transfer_luminance(CONTENT, styled)
    np.testing.assert_allclose(out @ to_yiq[0], styled @ to_yiq[0], atol=1e-9)
    np.testing.assert_allclose(out @ to_yiq[1:].T, CONTENT @ to_yiq[1:].T, atol=1e-9)


def test_match_colours_gives_the_paintings_mean_and_covariance():
    rng = np.random.default_rng(4)
    photo = 100 + 20 * rng.standard_normal((40, 30, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 0.5]])
    paintings = [110 + 15 * rng.standard_normal((30, 30, 3)) @ np.array([[1, 0, 0], [0.4, 0.6, 0], [0.2, 0, 1]]),
                 140 + 10 * rng.standard_normal((20, 25, 3))]

    def moments(images, weights):      # of the pixels of the images mixed by weights
        pixels = [i.reshape(-1, 3) for i in images]
        mean = sum(w * p.mean(0) for w, p in zip(weights, pixels))
        return mean, sum(w * (p - mean).T @ (p - mean) / len(p) for w, p in zip(weights, pixels))
    for targets, weights in [(paintings[:1], None), (paintings, [0.25, 0.75])]:
        out = match_colours(photo, targets, weights)
        assert out.shape == photo.shape and 0 < out.min() and out.max() < 255   # nothing clipped
        mean, cov = moments(targets, weights or [1.0])
        np.testing.assert_allclose(out.reshape(-1, 3).mean(0), mean, atol=1e-9)
        np.testing.assert_allclose(np.cov(out.reshape(-1, 3).T, bias=True), cov, atol=1e-8)
    flat = match_colours(np.full((8, 8, 3), 50.0), paintings[:1])               # a flat photo: the mean colour
    np.testing.assert_allclose(flat, np.broadcast_to(paintings[0].reshape(-1, 3).mean(0), flat.shape), atol=1e-9)


def test_match_histograms_gives_the_paintings_distribution_along_its_colour_axes():
    rng = np.random.default_rng(5)
    photo = 100 + 20 * rng.standard_normal((30, 40, 3)) @ np.array([[1, 0.5, 0], [0, 1, 0.3], [0, 0, 0.5]])
    # a painting of two colour clusters (near-black and yellow): far from the photo's Gaussian shape
    dark = rng.random((40, 30, 1)) < 0.3
    painting = np.where(dark, [30, 25, 40], [200, 170, 60]) + 8 * rng.standard_normal((40, 30, 3))
    out = match_histograms(photo, [painting])
    assert out.shape == photo.shape and 0 < out.min() and out.max() < 255        # nothing clipped
    pixels = painting.reshape(-1, 3)
    axes = np.linalg.eigh(np.cov(pixels.T, bias=True))[1]
    mean = pixels.mean(0)
    # as many pixels as the painting: each coordinate takes exactly the painting's values, in the photo's order
    np.testing.assert_allclose(np.sort((out.reshape(-1, 3) - mean) @ axes, axis=0),
                               np.sort((pixels - mean) @ axes, axis=0), atol=1e-9)
    linear = match_colours(photo, [painting]).reshape(-1, 3)
    for c in range(3):
        np.testing.assert_array_equal(np.argsort((out.reshape(-1, 3) - mean) @ axes[:, c]),
                                      np.argsort((linear - mean) @ axes[:, c]))
    # a blend weight of 0 ignores that painting; a flat photo becomes one colour
    np.testing.assert_allclose(match_histograms(photo, [painting, photo], [1, 0]), out, atol=1e-9)
    flat = match_histograms(np.full((8, 8, 3), 50.0), [painting])
    np.testing.assert_allclose(flat, np.broadcast_to(flat[0, 0], flat.shape), atol=1e-9)


# ----- the command line ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A content and a style image and a VGG16 weights file of random weights, in a temporary folder."""
    folder = tmp_path_factory.mktemp("stylize")
    save_image(folder / "content.png", CONTENT)
    save_image(folder / "style.jpg", STYLE)
    np.random.seed(0)
    attrs = dict(ARCHITECTURES["vgg16"], architecture="vgg16", source_package="", source_version="",
                 source_file="random weights of tests/test_stylize.py", source_sha256="")
    weights.save(folder / "vgg16_random.h5", VGG(), attrs)
    return folder


def stylize(files, *args):
    return main([str(files / "content.png"), str(files / "style.jpg"), "--weights", str(files / "vgg16_random.h5"),
                 "--size", "32", *map(str, args)])


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_no_arguments_prints_usage(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m tinyconv.stylize") and "--demo" in err


def test_help_documents_defaults_and_the_loss_convention(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    for text in ("--original-colors", "--style-blend", "J_content = sum((a_C - a_G)^2) / (4 nH nW nC)",
                 "--scales", "(default 3", "default 15", "60+30+15", "block4_conv2", "LOSSY", "(default 1.0)",
                 "(default 0.001)", "(default recolored)"):
        assert text in out


@pytest.mark.parametrize("args, message", [
    ("{f}/content.png {f}/missing.jpg -o {f}/out.png", "missing.jpg: no such image file"),
    ("{f}/not_an_image.jpg {f}/style.jpg -o {f}/out.png", "not_an_image.jpg: not a readable image"),
    ("{f}/content.png {f}/style.jpg -o {f}/no_such_folder/out.png", "no_such_folder does not exist"),
    ("{f}/content.png {f}/style.jpg -o {f}", "is a folder; name the file"),
    ("{f}/content.png {f}/style.jpg -o {f}/content.png", "is also an input image"),
    ("{f}/content.png {f}/style.jpg -o {f}/style.jpg", "is also an input image"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.png --style-blend nan", "--style-blend: expected 1 finite"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.xyz", "unknown image format"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.png --style-layers conv9_1", "vgg16: no layer 'conv9_1'"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.png --style-blend 1,2", "--style-blend: expected 1 finite"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.png --style-layers conv1_1:-1", "--style-layers weights"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.png --size 8", "VGG needs at least 16 on each side"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.png --size 300000", "GiB available; use a smaller --size"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.png --init {f}/nothing.png", "nothing.png: no such image file"),
    ("{f}/content.png {f}/style.jpg -o {f}/out.png --model vgg19 --weights {f}/none.h5", "none.h5: no such"),
])
def test_failures_are_one_line_before_any_work(files, capsys, args, message):
    (files / "not_an_image.jpg").write_text("hello")
    before = load_image(files / "content.png")
    assert main(args.format(f=files).split()) == 1
    assert message in one_error_line(capsys)
    assert not (files / "out.png").exists()
    np.testing.assert_array_equal(load_image(files / "content.png"), before)


def test_a_read_only_output_folder_is_refused_before_any_work(files, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("tinyconv.files.tempfile.mkstemp", refuse)   # as a read-only folder does (even for root)
    monkeypatch.setattr(StyleTransfer, "__init__", lambda *a, **k: pytest.fail("optimisation started"))
    assert stylize(files, "-o", files / "out.png") == 1
    line = one_error_line(capsys)
    assert "cannot write into" in line and "Permission denied" in line


@pytest.mark.parametrize("option, value, message", [
    ("--content-weight", "nan", "expected a finite number"),
    ("--style-weight", "inf", "expected a finite number"),
    ("--tv-weight", "-1", "expected a finite number >= 0"),
    ("--style-scale", "0", "expected a finite number > 0"),
    ("--iterations", "0", "expected a positive integer"),
    ("--scales", "0", "expected a positive integer"),
    ("--learning-rate", "1", "L-BFGS chooses its own"),
])
def test_bad_numbers_are_usage_errors(files, capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_:
        stylize(files, "-o", files / "out.png", option, value)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "Traceback" not in "".join(err)
    assert not (files / "out.png").exists()


def test_missing_style_is_a_usage_error(files, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(files / "content.png"), "-o", str(files / "out.png")])
    assert exit_.value.code == 2
    assert "at least one STYLE image" in capsys.readouterr().err


def test_run_writes_the_image_and_the_same_seed_gives_the_same_image(files, capsys):
    for name in ("a.png", "b.png"):
        assert stylize(files, "-o", files / name, "--iterations", 3, "--init", "noise", "--seed", 7) == 0
    a, b = load_image(files / "a.png"), load_image(files / "b.png")
    assert a.shape == (24, 32, 3)
    np.testing.assert_array_equal(a, b)
    err = capsys.readouterr().err
    assert "stylize: scale 1/1 32x24: 3/3 iterations" in err and "ETA 0:00  loss" in err
    assert stylize(files, "-o", files / "c.png", "--iterations", 3, "--init", "noise", "--seed", 8) == 0
    assert not np.array_equal(a, load_image(files / "c.png"))


def test_adam_save_every_original_colors_and_blend(files):
    out = files / "adam.jpg"
    assert stylize(files, str(files / "style.jpg"), "-o", out, "--optimizer", "adam", "--iterations", 4,
                   "--learning-rate", 2, "--save-every", 2, "--original-colors", "--style-blend", "0.3,0.7",
                   "--pooling", "avg") == 0
    assert load_image(out).shape == (24, 32, 3)
    assert (files / "adam_1_0002.jpg").is_file() and not (files / "adam_1_0004.jpg").exists()


def test_coarse_to_fine_from_the_command_line(files, capsys):
    save_image(files / "big.png", np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    out = files / "scales.png"
    assert main([str(files / "big.png"), str(files / "style.jpg"), "--weights", str(files / "vgg16_random.h5"),
                 "--size", "64", "--scales", "2", "--iterations", "2", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "over 2 scale(s) (32x32, 64x64), 4+2 iterations" in err
    assert "scale 1/2 32x32: 4/4 iterations" in err and "scale 2/2 64x64: 2/2 iterations" in err
    assert load_image(out).shape == (64, 64, 3)


def test_ctrl_c_saves_the_latest_image(files, monkeypatch, capsys):
    calls = {"n": 0}
    original = StyleTransfer.loss_and_grad

    def interrupted(self, x):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, x)
    monkeypatch.setattr(StyleTransfer, "loss_and_grad", interrupted)
    out = files / "interrupted.png"
    assert stylize(files, "-o", out, "--iterations", 50) == 130
    assert load_image(out).shape == (24, 32, 3)
    assert "interrupted" in capsys.readouterr().err
    assert not [p for p in files.iterdir() if p.name.startswith(".interrupted")]   # no temporary file left


def test_demo_writes_only_what_o_names(tmp_path, files, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights_args = ["--weights", str(files / "vgg16_random.h5"), "--scales", "1", "--iterations", "1"]
    assert main(["--demo", "-o", "demo.png", *weights_args]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.png"]
    assert load_image(tmp_path / "demo.png").shape == (96, 128, 3)
    assert main(["--demo", "-o", "asked.png", "--demo-inputs", *weights_args]) == 0
    assert {"asked.png", "asked_content.png", "asked_style.png"} <= {p.name for p in tmp_path.iterdir()}


def test_segmented_gradient_equals_the_whole_graph():
    """Gradient checkpointing (one block at a time) gives the same cost, parts and gradient as the whole graph."""
    np.random.seed(0)
    model = VGG().astype(np.float64)
    x = model.preprocess(np.random.default_rng(6).uniform(0, 255, (16, 16, 3)))
    plain, segmented = small_problem(model), small_problem(model)
    segmented.segmented = True
    cost, grad, parts = plain.loss_and_grad(x)
    cost_s, grad_s, parts_s = segmented.loss_and_grad(x)
    assert len(model.segments(plain.layers)) == 5
    assert cost_s == pytest.approx(cost, rel=1e-10)
    assert parts_s == pytest.approx(parts, rel=1e-10)
    np.testing.assert_allclose(grad_s, grad, rtol=1e-9, atol=1e-12 * np.abs(grad).max())
    layers = plain.layers
    assert memory_estimate(model, 1024, 1024, layers, segmented=True) < memory_estimate(model, 1024, 1024, layers)


def test_an_image_too_large_for_max_memory_runs_one_block_at_a_time(files, capsys):
    model, layers = VGG(), ["block4_conv2"] + [name for name, _ in STYLE_LAYERS]
    whole, segmented = (max(memory_estimate(model, h, w, layers, segmented=s) for h, w in [(24, 32), (32, 32)])
                        for s in (False, True))   # the content image and the style image, fitted to 32 px
    assert segmented < whole
    limit = (whole + segmented) / 2 / 2 ** 30
    assert stylize(files, "-o", files / "blocks.png", "--iterations", 1, "--max-memory", limit) == 0
    assert "one block at a time" in capsys.readouterr().err
    assert stylize(files, "-o", files / "blocks.png", "--iterations", 1, "--max-memory", segmented / 2 / 2 ** 30) == 1
    assert "even one network block at a time, more than" in one_error_line(capsys)
