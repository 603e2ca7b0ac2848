"""Neural style transfer (Gatys, Ecker & Bethge 2015) under the Coursera course's names.

    compute_content_cost(a_C, a_G)            J_content of one layer's activations
    gram_matrix(A)                            G = A A^T
    compute_layer_style_cost(a_S, a_G)        J_style of one layer
    compute_style_cost(G_S, a_G, layers)      the weighted sum over layers (targets from `style_targets`)
    total_cost(J_content, J_style, alpha, beta)
    StyleTransfer, run_lbfgs, run_adam        the optimisation over the pixels
    coarse_to_fine, pyramid                   ... over a pyramid of sizes (Gatys et al. 2017)
Modules: costs.py (the costs), optimisation.py (the optimisation), images.py (resizing, luminance transfer),
__main__.py (the command line: python -m tinyconv.stylize --help).
"""
from tinyconv.style.costs import (CONTENT_LAYER, STYLE_LAYERS, compute_content_cost, compute_layer_style_cost,
                                  compute_style_cost, gram_matrix, style_gram, style_targets, target_style_cost,
                                  total_cost, total_variation_cost, unroll)
from tinyconv.style.optimisation import StyleTransfer, coarse_to_fine, pyramid, run_adam, run_lbfgs

__all__ = ["compute_content_cost", "gram_matrix", "compute_layer_style_cost", "compute_style_cost", "total_cost",
           "CONTENT_LAYER", "STYLE_LAYERS", "style_gram", "style_targets", "target_style_cost",
           "total_variation_cost", "unroll", "StyleTransfer", "coarse_to_fine", "pyramid", "run_adam", "run_lbfgs"]
