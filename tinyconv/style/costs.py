"""The costs of neural style transfer (Gatys, Ecker & Bethge 2015) with the course's names and normalisations.

All functions take activations of one network layer, shape (1, nH, nW, nC) (a `Tensor` or an ndarray), and return
a scalar `Tensor`, so the generated image's gradient comes from `backward()`:

    J_content     = 1/(4 nH nW nC) * sum((a_C - a_G)^2)
    G             = A A^T                       A: the activations unrolled to (nC, nH*nW), channels as rows
    J_style_layer = 1/(4 nC^2 (nH nW)^2) * sum((G_S - G_G)^2)
    J_style       = sum over layers l of lambda_l * J_style_layer(l)
    J             = alpha * J_content + beta * J_style          (the course: alpha 10, beta 40)

The style image may have another size than the generated one, so the targets are kept as Grams *per position*
(G / (nH nW)); `target_style_cost` compares one with the generated activations, and with equal sizes
`compute_layer_style_cost` (which builds the target from a_S) is exactly the course's formula. A total-variation
cost (mean squared difference of neighbouring pixels) smooths the generated image.
"""
import tinyconv.functional as F

# The course's layers (VGG19 conv4_2; conv1_1 ... conv5_1 with equal weights), in the weights file's names: the
# defaults of every style-transfer function and of the command line.
CONTENT_LAYER = "block4_conv2"
STYLE_LAYERS = [("block1_conv1", 0.2), ("block2_conv1", 0.2), ("block3_conv1", 0.2), ("block4_conv1", 0.2),
                ("block5_conv1", 0.2)]


def compute_content_cost(a_C, a_G):
    """J_content = 1/(4 nH nW nC) * sum((a_C - a_G)^2) for activations of shape (1, nH, nW, nC)."""
    _, n_H, n_W, n_C = a_G.shape
    return F.sum(F.sub(a_C, a_G) ** 2) / (4 * n_H * n_W * n_C)


def unroll(a):
    """Activations (1, nH, nW, nC) -> the course's matrix A of shape (nC, nH*nW): one row per channel."""
    _, n_H, n_W, n_C = a.shape
    return F.transpose(F.reshape(a, (n_H * n_W, n_C)), (1, 0))


def gram_matrix(A):
    """G = A A^T for A of shape (nC, n): the (nC, nC) matrix of channel correlations."""
    return F.gram(A)


def style_gram(a):
    """The Gram matrix of activations (1, nH, nW, nC) per position, G / (nH nW), shape (nC, nC)."""
    _, n_H, n_W, _ = a.shape
    return gram_matrix(unroll(a)) / (n_H * n_W)


def target_style_cost(G_S, a_G):
    """J_style_layer from a per-position target Gram G_S (nC, nC) and generated activations a_G (1, nH, nW, nC).

    1/(4 nC^2) * sum((G_S - G_G/(nH nW))^2), which is 1/(4 nC^2 (nH nW)^2) * sum((G_S (nH nW) - G_G)^2).
    """
    n_C = a_G.shape[-1]
    if G_S.shape != (n_C, n_C):
        raise ValueError(f"target_style_cost: target Gram has shape {G_S.shape}, expected ({n_C}, {n_C})")
    return F.sum(F.sub(G_S, style_gram(a_G)) ** 2) / (4 * n_C ** 2)


def compute_layer_style_cost(a_S, a_G):
    """J_style_layer = 1/(4 nC^2 (nH nW)^2) * sum((G_S - G_G)^2) for activations of shape (1, nH, nW, nC)."""
    return target_style_cost(style_gram(a_S), a_G)


def compute_style_cost(G_S, a_G, style_layers=STYLE_LAYERS):
    """J_style = sum of lambda_l * J_style_layer(l) over `style_layers`, a list of (layer name, lambda_l).

    G_S: dict layer -> target Gram per position (see `style_targets`); a_G: dict layer -> generated activations.
    (The course recomputes the style image's Grams at every step; they are fixed, so here they are computed once.)
    """
    return sum(weight * target_style_cost(G_S[name], a_G[name]) for name, weight in style_layers)


def style_targets(style_activations, blend=None):
    """Target Grams for `compute_style_cost` from the activations of one or more style images.

    style_activations: a list of dicts layer -> activations (1, nH, nW, nC), one dict per style image (any sizes).
    blend: one weight per style image (default equal); they are normalised to sum to 1. Matching the blended Gram
    has the same gradient as the blend-weighted sum of each style's cost. Returns dict layer -> (nC, nC) ndarray.
    """
    if blend is None:
        blend = [1.0] * len(style_activations)
    if len(blend) != len(style_activations) or min(blend) < 0 or sum(blend) <= 0:
        raise ValueError(f"style blend weights {list(blend)}: need {len(style_activations)} non-negative weights "
                         "with a positive sum")
    total = float(sum(blend))
    return {name: sum(w / total * style_gram(acts[name]).data for w, acts in zip(blend, style_activations))
            for name in style_activations[0]}


def total_variation_cost(x):
    """Mean squared difference between vertically and horizontally neighbouring pixels of x (1, H, W, C)."""
    dy = F.sub(x[:, 1:, :, :], x[:, :-1, :, :])
    dx = F.sub(x[:, :, 1:, :], x[:, :, :-1, :])
    return (F.sum(dy ** 2) + F.sum(dx ** 2)) / x.size


def total_cost(J_content, J_style, alpha=10, beta=40):
    """J = alpha * J_content + beta * J_style (the course's weights by default)."""
    return alpha * J_content + beta * J_style
