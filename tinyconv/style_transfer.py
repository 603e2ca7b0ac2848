"""The optimisation of neural style transfer: change the pixels of an image until its VGG features have the content
image's activations at the content layer and the style images' Gram matrices at the style layers.

`StyleTransfer` holds the fixed targets (computed once, without a graph) and gives J(x) and dJ/dx for a generated
image x; `run_lbfgs` (the paper's choice, through scipy) and `run_adam` (the course's choice) drive it.
Images here are the network's input: (1, H, W, 3) float32, preprocessed as the model wants (VGG: BGR minus mean).
"""
import numpy as np
import scipy.optimize

from tinyconv import Tensor, no_grad, optim
from tinyconv.style import (compute_content_cost, compute_style_cost, style_targets, total_cost,
                            total_variation_cost)


class StyleTransfer:
    """J(x) = content_weight * J_content + style_weight * J_style + tv_weight * J_tv, and its gradient.

    model: a feature extractor with `features(x, layers)` and `preprocess` (models/vgg.py).
    content: (1, H, W, 3) preprocessed; styles: list of preprocessed (1, h, w, 3) images of any sizes.
    style_layers: list of (layer, lambda); blend: one weight per style image (default equal).
    Remembers the lowest-cost image it has evaluated (`best`), so an interrupted run still has a result.
    """

    def __init__(self, model, content, styles, content_layer, style_layers, content_weight, style_weight, tv_weight,
                 blend=None):
        self.model = model
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
        x = Tensor(x, requires_grad=True)
        J, parts = self.costs(x)
        J.backward()
        cost = J.item()
        self.evaluations += 1
        if cost < self.best_cost:
            self.best, self.best_cost = x.data.copy(), cost
        return cost, x.grad, parts


def run_lbfgs(problem, x0, iterations, callback=None, history=10):
    """Minimise with L-BFGS (scipy's L-BFGS-B without bounds); returns the best image seen.

    Unbounded, as the Lua implementation: bounding the pixels to 0..255 made the first iterations crawl (the image is
    clipped when it is saved). scipy works on a float64 vector, the network on a float32 image. Each iteration
    may evaluate J several times (line search). ftol and gtol are 0 so it runs the iterations asked for unless
    the line search gives up.
    callback(iteration, parts) after each iteration, with the terms of the latest evaluation.
    """
    shape, latest = x0.shape, {}

    def fun(v):
        cost, grad, latest["parts"] = problem.loss_and_grad(v.reshape(shape).astype(np.float32))
        return cost, grad.astype(np.float64).ravel()

    def after_iteration(_):
        after_iteration.count += 1
        if callback is not None:
            callback(after_iteration.count, latest["parts"])
    after_iteration.count = 0

    scipy.optimize.minimize(fun, x0.astype(np.float64).ravel(), jac=True, method="L-BFGS-B",
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


def memory_estimate(model, height, width, layers, history=10):
    """Bytes a run at height x width needs, roughly: 1.4 GB were measured (peak RSS) at 512x384 with VGG16.

    Per conv layer the graph keeps the convolution's output, the ReLU's output and mask, and backward makes the
    gradients and temporaries of each (about 16 bytes per float32 value in all, measured); backward holds the
    gradients of the largest layer; L-BFGS stores 2 * history float64 vectors of the image's size; the weights
    and Python with NumPy/Numba take a fixed part.
    """
    deepest = max(layers, key=lambda name: model.layer_names.index(model.layer_name(name)))
    sizes = [int(np.prod(shape)) for _, shape in model.activation_shapes(height, width, deepest)]
    weights = sum(p.data.nbytes for p in model.parameters())
    return 16 * sum(sizes) + 16 * max(sizes) + 2 * history * 8 * height * width * 3 + weights + (300 << 20)
