"""Optimisers: update each parameter from its `.grad` after `loss.backward()`."""
import numpy as np


class Optimizer:
    def __init__(self, params):
        self.params = list(params)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


class SGD(Optimizer):
    """v = momentum * v + g;  p = p - lr * v   (plain gradient descent when momentum = 0)."""

    def __init__(self, params, lr, momentum=0.0):
        super().__init__(params)
        self.lr, self.momentum = lr, momentum
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def step(self):
        for p, v in zip(self.params, self.velocity):
            if p.grad is not None:
                v *= self.momentum
                v += p.grad
                p.data -= self.lr * v


class Adam(Optimizer):
    """Kingma & Ba 2015: m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr m_hat / (sqrt(v_hat) + eps),
    with the bias corrections m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        self.t = 0

    def step(self):
        self.t += 1
        c1, c2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m *= self.beta1
            m += (1 - self.beta1) * p.grad
            v *= self.beta2
            v += (1 - self.beta2) * p.grad * p.grad
            p.data -= (self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)).astype(p.dtype)
