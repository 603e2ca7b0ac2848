"""Grouping faces without names: Chinese whispers on the graph of faces closer than a threshold, and its measures.

Chinese whispers (Biemann 2006; dlib's `chinese_whispers`, which dlib uses to cluster faces): link every two
faces whose distance is below the threshold; each face starts in its own group; then, in random order, every face
joins the group most of its neighbours belong to, until no face moves. The number of groups is
not given in advance, and faces linked to nothing stay alone.

Measures against known identities (labels): pairwise precision (of the pairs put in one cluster, the fraction of
one person) and recall (of the pairs of one person, the fraction put in one cluster), and BCubed precision,
recall and F (Amigo et al. 2009: the same per face, averaged over faces).
"""
import numpy as np


def links(encodings, threshold, block=2048):
    """The pairs (i, j), i < j, of unit encodings (n, 128) closer than `threshold` -> (2, m) int64 array.

    Exact, in blocks of rows (memory: block x n similarities). Clustering compares every face with every other,
    where one pass of matrix products beats building an HNSW graph at every size bench_search.py measured
    (100k faces: about 1.3e12 multiply-adds, some seconds, against minutes to build the graph).
    """
    n = len(encodings)
    min_sim = 1 - threshold ** 2 / 2  # |a - b| < t  <=>  a.b > 1 - t^2 / 2 for unit vectors
    pairs = [np.empty((2, 0), np.int64)]
    for start in range(0, n, block):
        sims = encodings[start:start + block] @ encodings.T
        i, j = np.nonzero(sims > min_sim)
        i += start
        pairs.append(np.stack([i[i < j], j[i < j]]).astype(np.int64))
    return np.concatenate(pairs, axis=1)


def chinese_whispers(n, pairs, iterations=100, seed=0):
    """Cluster labels (n,) int64 of a graph of n nodes with undirected edges `pairs` (2, m); 0 = largest cluster.

    A node joins the label most frequent among its neighbours; on a tie it keeps its own if it is one of them,
    else takes one of them at random (dlib's fixed tie-break can leave a chain of three split).
    """
    i, j = np.concatenate([pairs[0], pairs[1]]), np.concatenate([pairs[1], pairs[0]])
    order = np.argsort(i, kind="stable")
    starts = np.searchsorted(i[order], np.arange(n + 1))
    neighbours = j[order]
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        moved = 0
        for node in rng.permutation(n):
            around = labels[neighbours[starts[node]:starts[node + 1]]]
            if not len(around):
                continue
            values, counts = np.unique(around, return_counts=True)
            best = values[counts == counts.max()]
            if labels[node] not in best:
                labels[node] = best[rng.integers(len(best))]
                moved += 1
        if not moved:
            break
    _, labels, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    rank = np.empty_like(sizes)
    rank[np.lexsort((np.arange(len(sizes)), -sizes))] = np.arange(len(sizes))
    return rank[labels].astype(np.int64)


def cluster_faces(encodings, threshold, seed=0):
    """Cluster labels (n,) of unit encodings (n, 128): Chinese whispers on the faces closer than `threshold`."""
    encodings = np.asarray(encodings, np.float32)
    return chinese_whispers(len(encodings), links(encodings, threshold), seed=seed)


def pairwise_scores(labels, truth):
    """(precision, recall) over pairs of items: same cluster vs same identity."""
    labels, truth = _codes(labels), _codes(truth)
    same_both = _pairs(np.bincount(labels * (truth.max() + 1) + truth))
    same_cluster, same_truth = _pairs(np.bincount(labels)), _pairs(np.bincount(truth))
    return (same_both / same_cluster if same_cluster else 1.0), (same_both / same_truth if same_truth else 1.0)


def bcubed_scores(labels, truth):
    """(precision, recall, F) BCubed: per item, the share of its cluster of its identity, and vice versa."""
    labels, truth = _codes(labels), _codes(truth)
    both = labels * (truth.max() + 1) + truth
    overlap = np.bincount(both)[both]
    precision = float(np.mean(overlap / np.bincount(labels)[labels]))
    recall = float(np.mean(overlap / np.bincount(truth)[truth]))
    return precision, recall, 2 * precision * recall / (precision + recall)


def _codes(values):
    return np.unique(np.asarray(values), return_inverse=True)[1].ravel().astype(np.int64)


def _pairs(counts):
    counts = np.asarray(counts, np.int64)
    return int(np.sum(counts * (counts - 1) // 2))
