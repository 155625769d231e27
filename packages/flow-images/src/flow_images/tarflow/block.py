"""One autoregressive flow block of TARFlow (Zhai et al. 2024, arXiv 2412.06329, §3.1).

The block reads the tokens x_1 … x_T (in its own order: block k reverses the sequence when
k is odd) and maps them to

    z_i = (x_i − μ_i(x_<i))·exp(−a_i(x_<i)),   log|det ∂z/∂x| = −Σ_i a_i,

where (μ_i, a_i) come from a causal transformer's output at position i − 1 (the first token
has μ = a = 0). The output projection is zero-initialised, so a new block is the identity.
The log-scale is soft-clipped, a = b·tanh(â/b) with b = ``scale_bound`` (STARFlow, Gu et al.
2025, arXiv 2506.06276, clips at 4), which keeps e^{a} bounded during inversion.

Inversion is sequential: x_i = z_i·exp(a_i) + μ_i once x_<i is known. :meth:`predict` gives
the (guided) parameters for the token after each input token, reading and extending a
:class:`~flow_images.tarflow.transformer.KVCache`, which is what sequential decoding and
GS-Jacobi iteration are both built from.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from flow_images.tarflow.guidance import Guidance
from flow_images.tarflow.transformer import CausalTransformer, KVCache

__all__ = ["AutoregressiveBlock"]


class AutoregressiveBlock(nn.Module):
    """A causal-transformer autoregressive affine flow over ``(B, T, token_dim)`` tokens.

    Args:
        kind: the owning flow's name, for error messages.
        token_dim: elements per token D (channels × patch²).
        tokens: sequence length T.
        width, depth, heads, norm: the transformer's size (see :class:`CausalTransformer`).
        num_classes: labels embedded into this block (0: the block ignores labels).
        flip: whether the block reads the tokens in reverse order.
        scale_bound: soft-clip bound b of the log-scale.
    """

    def __init__(
        self,
        kind: str,
        token_dim: int,
        tokens: int,
        width: int,
        depth: int,
        heads: int,
        num_classes: int,
        flip: bool,
        norm: str | None = None,
        scale_bound: float = 4.0,
    ) -> None:
        super().__init__()
        self.token_dim = token_dim
        self.tokens = tokens
        self.flip = flip
        self.num_classes = num_classes
        self.scale_bound = scale_bound
        self.embed = nn.Linear(token_dim, width)
        self.position = nn.Parameter(torch.randn(tokens, width) * 0.02)
        self.label = nn.Embedding(num_classes + 1, width) if num_classes > 0 else None
        self.transformer = CausalTransformer(kind, width, depth, heads, norm)
        self.head = nn.Linear(width, 2 * token_dim)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def conditioned(self) -> bool:
        """Whether the block reads class labels."""
        return self.label is not None

    def order(self, tokens: Tensor) -> Tensor:
        """Natural order to the block's order (its own inverse)."""
        return tokens.flip(1) if self.flip else tokens

    def _hidden(
        self,
        x: Tensor,
        labels: Tensor | None,
        temperature: Tensor | None,
        cache: KVCache | None,
        commit: bool,
    ) -> Tensor:
        start = 0 if cache is None else cache.length
        h = self.embed(x) + self.position[start : start + x.shape[1]]
        if self.label is not None and labels is not None:
            h = h + self.label(labels)[:, None]
        out: Tensor = self.transformer(h, temperature, cache, commit)
        return out

    def _params(self, h: Tensor) -> tuple[Tensor, Tensor]:
        shift, raw = self.head(h).chunk(2, dim=-1)
        return shift, self.scale_bound * torch.tanh(raw / self.scale_bound)

    def forward(self, tokens: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Tokens (natural order) to ``(z, log|det ∂z/∂x|)``; z in natural order too."""
        x = self.order(tokens)
        mu, a = self._params(self._hidden(x, labels, None, None, True))
        mu = torch.cat([torch.zeros_like(mu[:, :1]), mu[:, :-1]], dim=1)
        a = torch.cat([torch.zeros_like(a[:, :1]), a[:, :-1]], dim=1)
        z = (x - mu) * torch.exp(-a)
        return self.order(z), -a.flatten(1).sum(dim=1)

    def predict(
        self,
        x: Tensor,
        labels: Tensor | None,
        guidance: Guidance | None = None,
        cache: KVCache | None = None,
        commit: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """(μ, a) of the tokens that follow each token of ``x`` (block order).

        ``x`` holds the tokens at positions ``cache.length`` … (0 … without a cache). With
        ``guidance`` of weight w > 0 the strong and weak models run as one doubled batch
        (the cache then holds both halves) and are combined by ``guidance.rule``; a block
        that reads no labels is not guided by the null label (both halves would agree).
        """
        batch = x.shape[0]
        strong_labels = labels if self.conditioned else None
        if guidance is None or guidance.weight == 0:
            return self._params(self._hidden(x, strong_labels, None, cache, commit))
        if self.label is not None and labels is not None:
            null = torch.full_like(labels, self.num_classes)
            pair_labels: Tensor | None = torch.cat([labels, null])
            temperature = None
        elif self.num_classes == 0:
            pair_labels = None
            ones = torch.ones(batch, device=x.device, dtype=x.dtype)
            temperature = torch.cat([ones, ones * guidance.temperature])
        else:  # a class-conditional flow's unconditioned block: nothing to guide
            return self._params(self._hidden(x, None, None, cache, commit))
        mu, a = self._params(
            self._hidden(torch.cat([x, x]), pair_labels, temperature, cache, commit)
        )
        return guidance.rule(mu[:batch], a[:batch], mu[batch:], a[batch:], guidance.weight)

    def inverse(
        self,
        z: Tensor,
        labels: Tensor | None = None,
        guidance: Guidance | None = None,
        cached: bool = True,
    ) -> Tensor:
        """z (natural order) to the block's input, token by token: T − 1 transformer passes.

        ``cached=False`` recomputes the whole prefix at every step (for testing the cache).
        """
        z = self.order(z)
        x = z.clone()
        cache = KVCache() if cached else None
        for i in range(1, self.tokens):
            if cache is not None:
                mu, a = self.predict(x[:, i - 1 : i], labels, guidance, cache)
                mu, a = mu[:, -1], a[:, -1]
            else:
                mu, a = self.predict(x[:, :i], labels, guidance)
                mu, a = mu[:, -1], a[:, -1]
            x[:, i] = z[:, i] * torch.exp(a) + mu
        return self.order(x)
