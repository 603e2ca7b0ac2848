"""The optimisation of neural style transfer: change the pixels of an image until its VGG features have the content
image's activations at the content layer and the style images' Gram matrices at the style layers.

`StyleTransfer` holds the fixed targets (computed once, without a graph) and gives J(x) and dJ/dx for a generated
image x; `run_lbfgs` (the paper's choice, through scipy) and `run_adam` (the course's choice) drive it.
`coarse_to_fine` runs them over a pyramid of sizes (Gatys et al. 2017, "Controlling Perceptual Factors in Neural
Style Transfer"): most iterations run on small images, where they are cheap and where the painting's large strokes
and colours settle; each result, upsampled, starts the next size.
Images here are the network's input: (1, H, W, 3) float32, preprocessed as the model wants (`VGG.preprocess`).
"""
import numpy as np
import scipy.optimize

from tinyconv import Tensor, no_grad, optim
from tinyconv.style.costs import (compute_content_cost, compute_style_cost, style_targets, target_style_cost,
                                  total_cost, total_variation_cost)
from tinyconv.style.images import resize

FIRST_STEP = 8.0       # pixel levels: see run_lbfgs
# memory_estimate's bytes per float32 activation value kept by the graph, per value of a max pooling's output (the
# output and its int32 argmax), added at the content layer, and held by backward at the largest layer (whole graph;
# one block at a time); L-BFGS's extra float64 image-sized vectors; the fixed part. Fitted to the peaks measured
# (/usr/bin/time) at 256, 512, 1024 and 2048 px (README, section Art, "Big images").
KEPT_BYTES, POOL_BYTES, CONTENT_BYTES, BACKWARD_BYTES, BLOCK_BACKWARD_BYTES = 4, 8, 8, 25, 22
LBFGS_VECTORS, BASE_BYTES = 5, 390 << 20
SMALLEST_SCALE = 32   # px: the shorter side below which a coarse scale is left out (VGG pools 4 times to conv5_1)


class StyleTransfer:
    """J(x) = content_weight * J_content + style_weight * J_style + tv_weight * J_tv, and its gradient.

    model: a feature extractor with `features(x, layers)` and `preprocess` (models/vgg.py).
    content: (1, H, W, 3) preprocessed; styles: list of preprocessed (1, h, w, 3) images of any sizes.
    style_layers: list of (layer, lambda); blend: one weight per style image (default equal).
    segmented: compute the gradient one network block at a time (`segmented_loss_and_grad`) to save memory.
    Remembers the lowest-cost image it has evaluated (`best`), so an interrupted run still has a result.
    """

    def __init__(self, model, content, styles, content_layer, style_layers, content_weight, style_weight, tv_weight,
                 blend=None, segmented=False):
        self.model, self.segmented = model, segmented
        self.content_layer, self.style_layers = content_layer, list(style_layers)
        self.weights = dict(content=content_weight, style=style_weight, tv=tv_weight)
        self.layers = [content_layer] + [name for name, _ in self.style_layers]
        with no_grad():
            self.a_C = model.features(content, [content_layer])[content_layer].data
            self.G_S = style_targets([model.features(s, [name for name, _ in self.style_layers]) for s in styles],
                                     blend)
        # pixel values 0..255 in the model's input convention (Adam clips to them)
        self.low = model.preprocess(np.zeros((1, 1, 3)))
        self.high = model.preprocess(np.full((1, 1, 3), 255.0))
        self.best, self.best_cost, self.evaluations = None, np.inf, 0

    def costs(self, x):
        """(J, parts) for the generated image x (Tensor (1, H, W, 3)); parts: the weighted terms as floats."""
        a_G = self.model.features(x, self.layers)
        J_content = compute_content_cost(self.a_C, a_G[self.content_layer])
        J_style = compute_style_cost(self.G_S, a_G, self.style_layers)
        J_tv = total_variation_cost(x)
        w = self.weights
        J = total_cost(J_content, J_style, alpha=w["content"], beta=w["style"]) + w["tv"] * J_tv
        parts = dict(content=w["content"] * J_content.item(), style=w["style"] * J_style.item(),
                     tv=w["tv"] * J_tv.item())
        return J, parts

    def loss_and_grad(self, x):
        """(J as float, dJ/dx as ndarray like x, parts) for x an ndarray (1, H, W, 3)."""
        if self.segmented:
            cost, grad, parts = self.segmented_loss_and_grad(x)
        else:
            x = Tensor(x, requires_grad=True)
            J, parts = self.costs(x)
            J.backward()
            cost, grad = J.item(), x.grad
        self.evaluations += 1
        if cost < self.best_cost:
            self.best, self.best_cost = np.array(x.data if isinstance(x, Tensor) else x, copy=True), cost
        return cost, grad, parts

    def segmented_loss_and_grad(self, x):
        """What `loss_and_grad` gives, computed one block at a time (gradient checkpointing, Chen et al. 2016).

        The forward pass keeps only each block's input, without a graph; then, last block first, each block runs
        again with its graph, and backward from its own cost terms and from its output with dJ/d(output) (the later
        blocks' share) gives dJ/d(its input), passed to the block below. One more forward pass; the memory of one
        block's graph instead of the whole network's.
        """
        runs = self.model.segments(self.layers)
        inputs = [x]
        with no_grad():
            for convs in runs[:-1]:
                inputs.append(self.model.run(Tensor(inputs[-1]), convs)[0].data)
        parts = dict(content=0.0, style=0.0, tv=0.0)
        grad = None
        for convs in runs[::-1]:       # each input is dropped once its block is done
            grad = self.block_backward(inputs.pop(), convs, grad, parts)
        image = Tensor(x, requires_grad=True)
        J_tv = self.weights["tv"] * total_variation_cost(image)
        J_tv.backward()
        parts["tv"] = J_tv.item()
        return sum(parts.values()), grad + image.grad, parts

    def block_backward(self, h, convs, grad_out, parts):
        """dJ/dh for the input h (ndarray) of the block `convs`, from its own cost terms (added to `parts`) and
        from grad_out = dJ/d(its output) (None for the last block). Its graph is freed on return."""
        w, lambdas = self.weights, dict(self.style_layers)
        h = Tensor(h, requires_grad=True)
        out, acts = self.model.run(h, convs, self.layers)
        J = 0
        for name, a in acts.items():
            if name == self.content_layer:
                term = w["content"] * compute_content_cost(self.a_C, a)
                parts["content"] += term.item()
                J = J + term
            if name in lambdas:
                term = w["style"] * lambdas[name] * target_style_cost(self.G_S[name], a)
                parts["style"] += term.item()
                J = J + term
        if acts:
            J.backward(retain_graph=grad_out is not None)
        if grad_out is not None:
            out.backward(grad_out)
        return h.grad


def run_lbfgs(problem, x0, iterations, callback=None, history=10, first_step=FIRST_STEP):
    """Minimise with L-BFGS (scipy's L-BFGS-B without bounds); returns the best image seen.

    Unbounded, as the Lua implementation: bounding the pixels to 0..255 made the first iterations crawl (the image is
    clipped when it is saved). scipy works on a float64 vector, the network on a float32 image. Each iteration
    may evaluate J several times (line search). ftol and gtol are 0 so it runs the iterations asked for unless
    the line search gives up.
    first_step: the root-mean-square pixel change (0..255 levels) of the first trial step. scipy's first trial
    moves its variables by a length of 1, which on raw pixels is far too short, and its line search then spends
    several evaluations growing the step: 20 iterations at 512 px took 28 evaluations, 22 with first_step 8 (2:
    23), the same picture (README). So it works on v = x / s with s = first_step * sqrt(x.size); after the first
    step L-BFGS does not depend on this scaling (s and y scale by 1/s and s). None: scipy's own first step.
    callback(iteration, parts) after each iteration, with the terms of the latest evaluation.
    """
    shape, latest = x0.shape, {}
    scale = 1.0 if first_step is None else first_step * np.sqrt(x0.size)

    def fun(v):
        cost, grad, latest["parts"] = problem.loss_and_grad((scale * v).reshape(shape).astype(np.float32))
        return cost, scale * grad.astype(np.float64).ravel()

    def after_iteration(_):
        after_iteration.count += 1
        if callback is not None:
            callback(after_iteration.count, latest["parts"])
    after_iteration.count = 0

    scipy.optimize.minimize(fun, x0.astype(np.float64).ravel() / scale, jac=True, method="L-BFGS-B",
                            callback=after_iteration,
                            options=dict(maxiter=iterations, maxfun=4 * iterations, maxcor=history, ftol=0,
                                         gtol=0))
    return problem.best


def run_adam(problem, x0, iterations, lr, callback=None):
    """Minimise with Adam (the course: lr 0.01 on a 0..1 image, i.e. 2.55 on 0..255), pixels clipped to 0..255.

    Returns the best image seen. callback(iteration, parts) after each step.
    """
    x = Tensor(x0.copy(), requires_grad=True)
    adam = optim.Adam([x], lr=lr)
    for i in range(1, iterations + 1):
        _, x.grad, parts = problem.loss_and_grad(x.data)
        adam.step()
        np.clip(x.data, problem.low, problem.high, out=x.data)
        if callback is not None:
            callback(i, parts)
    problem.loss_and_grad(x.data)   # the last step's image is a candidate too
    return problem.best


def pyramid(height, width, scales, smallest=SMALLEST_SCALE):
    """The sizes of a coarse-to-fine run, coarse first: [(h, w), ...], each half the next, ending at (height, width).

    Sizes whose shorter side would be under `smallest` pixels are left out (so there may be fewer than `scales`).
    """
    sizes = [(max(1, round(height / 2 ** k)), max(1, round(width / 2 ** k))) for k in range(scales)]
    return [(h, w) for k, (h, w) in enumerate(sizes) if k == 0 or min(h, w) >= smallest][::-1]


def scale_iterations(iterations, count):
    """Iterations per scale, coarse first: `iterations` at the finest, twice as many at each coarser one.

    A scale has a quarter of the next one's pixels, so its iterations cost about half as much time in all.
    """
    return [iterations * 2 ** (count - 1 - k) for k in range(count)]


def coarse_to_fine(model, init_rgb, sizes, iterations, problem_at, optimise, recolour=None):
    """Optimise at each size in turn; returns the last problem (its `best` is the result, an input-space image).

    init_rgb: (H, W, 3) RGB 0..255, resized to start the first scale; each later scale starts from the previous
    result, upsampled. problem_at(height, width) -> a `StyleTransfer` at that size (its content and style images
    resized); optimise(problem, x0, iterations, scale) runs an optimiser, scale counting from 0.
    recolour(rgb) -> rgb, if given, is applied to each scale's start (at that scale's size): the command line gives
    the start the painting's colours there (`match_histograms`), since the optimisation drifts away from them.
    """
    rgb = init_rgb
    for k, ((height, width), n) in enumerate(zip(sizes, iterations)):
        problem = problem_at(height, width)
        start = resize(rgb, height, width)
        x0 = model.preprocess(start if recolour is None else recolour(start))
        optimise(problem, x0, n, k)
        if problem.best is None:   # no evaluation ran (0 iterations): the start is the result
            problem.loss_and_grad(x0)
        rgb = model.deprocess(problem.best)
    return problem


def memory_estimate(model, height, width, layers, history=10, segmented=False):
    """Bytes a run at height x width needs, roughly (compared with the peak RSS measured at 256, 512, 1024 and
    2048 px in the README); layers: the content layer first, then the style layers.

    The graph keeps, per conv layer, its output (`F.conv2d_relu`: KEPT_BYTES per value), per pooling its output
    and, for max pooling, its argmax (POOL_BYTES per output value) and, at the content layer, the content cost's
    difference and square (CONTENT_BYTES; the style costs' Grams read the activations in place); backward holds the
    gradients and temporaries of the largest layer (BACKWARD_BYTES per value: the gradients of its output and
    input, the style cost's gradient and its reshaped copy, their sum, and what the allocator keeps); scipy's
    L-BFGS-B keeps a work array of 2 * history + LBFGS_VECTORS float64 vectors of the image's size; the weights
    and Python with NumPy/Numba/SciPy (BASE_BYTES) take a fixed part. `segmented` (one block's graph at a time,
    `segmented_loss_and_grad`): the largest, over the blocks, of that block's graph and backward
    (BLOCK_BACKWARD_BYTES: its gradients are freed block by block) plus the float32 inputs of the blocks below it,
    still waiting for their turn.
    """
    deepest = max(layers, key=lambda name: model.layer_names.index(model.layer_name(name)))
    sizes = {name: int(np.prod(shape)) for name, shape in model.activation_shapes(height, width, deepest)}
    content = model.layer_name(layers[0])

    def graph(convs, backward):
        values = [sizes[c.name] for c in convs]
        pooled = sum(sizes[c.name] * c.kernel.shape[-2] // c.kernel.shape[-1] for c in convs if c.name in model.pooled)
        return KEPT_BYTES * sum(values) + (POOL_BYTES if model.pooling == "max" else KEPT_BYTES) * pooled \
            + CONTENT_BYTES * sum(sizes[c.name] for c in convs if c.name == content) + backward * max(values)
    if segmented:
        runs, below = model.segments(layers), 4 * height * width * 3
        need = 0
        for convs in runs:
            need = max(need, below + graph(convs, BLOCK_BACKWARD_BYTES))
            below += 4 * sizes[convs[-1].name]
    else:
        need = graph(model.convs_to(deepest), BACKWARD_BYTES)
    weights = sum(p.data.nbytes for p in model.parameters())
    return need + (2 * history + LBFGS_VECTORS) * 8 * height * width * 3 + weights + BASE_BYTES
