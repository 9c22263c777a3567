"""One GPU's share of a Llama-family forward step in plain PyTorch (`measure.py`'s whole
steps), and the check that its decode, chunk and mixed paths agree with a plain prefill."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from _harness import MODELS

class Llama:
    """One GPU's share of a Llama forward step (tensor parallelism `tp`: its heads and FFN
    columns; no all-reduce), with a contiguous per-sequence KV cache."""

    def __init__(self, cfg, tp, dev, dt, max_tokens, small=False):
        self.cfg, self.tp, self.dev, self.dt = cfg, tp, dev, dt
        d, hd = cfg["d"], cfg["head_dim"]
        self.hq, self.hkv = cfg["heads"] // tp, max(1, cfg["kv_heads"] // tp)
        self.hd, self.ffn = hd, cfg["ffn"] // tp
        self.layers = cfg["layers"] if not small else 2
        vocab = cfg["vocab"] // tp if not small else 1000
        std = 0.02

        def p(*shape):
            return torch.empty(*shape, device=dev, dtype=dt).normal_(0, std)
        self.embed = p(vocab, d)
        self.lm_head = p(vocab, d)
        self.final_norm = torch.ones(d, device=dev, dtype=dt)
        self.w = [dict(qkv=p((self.hq + 2 * self.hkv) * hd, d), o=p(d, self.hq * hd),
                       gate_up=p(2 * self.ffn, d), down=p(d, self.ffn),
                       n1=torch.ones(d, device=dev, dtype=dt),
                       n2=torch.ones(d, device=dev, dtype=dt)) for _ in range(self.layers)]
        # rotary tables (positions up to max_tokens)
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, device=dev).float() / hd))
        ang = torch.outer(torch.arange(max_tokens, device=dev).float(), inv)
        self.cos, self.sin = ang.cos().to(dt), ang.sin().to(dt)
        self.bqkv = p((self.hq + 2 * self.hkv) * hd) if cfg.get("qkv_bias") else None
        self.cache = None
        self.backend = None  # torch.nn.attention.SDPBackend the attention runs on
        self.native_gqa = False  # chunks: K/V heads shared by the kernel, not expanded

    def weight_bytes(self):
        return sum(t.numel() * t.element_size() for lw in self.w for t in lw.values()) + \
            self.lm_head.numel() * self.lm_head.element_size()

    def alloc_cache(self, b, t):
        """K and V per layer: [b, kv_heads, t, head_dim]."""
        self.cache = None
        if self.dev == "cuda":
            torch.cuda.empty_cache()
        self.cache = [(torch.empty(b, self.hkv, t, self.hd, device=self.dev, dtype=self.dt)
                       .normal_(), torch.empty(b, self.hkv, t, self.hd, device=self.dev,
                                               dtype=self.dt).normal_())
                      for _ in range(self.layers)]

    def _attention(self):
        import contextlib
        from torch.nn.attention import sdpa_kernel
        return sdpa_kernel(self.backend) if self.backend is not None \
            else contextlib.nullcontext()

    def _rope(self, x, pos):
        # x [b, s, h, hd]; pos [s]
        c, s = self.cos[pos][None, :, None, :], self.sin[pos][None, :, None, :]
        x1, x2 = x[..., : self.hd // 2], x[..., self.hd // 2:]
        return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)

    def forward(self, ids, start, logits_only=False):
        """ids [b, s] at positions start..start+s-1 (s > 1: a prefill of s tokens after
        `start` cached ones; s == 1: decode attending to start+1 tokens). Returns next ids
        [b]."""
        b, s = ids.shape
        hq, hkv, hd = self.hq, self.hkv, self.hd
        pos = torch.arange(start, start + s, device=self.dev)
        x = self.embed[ids].view(b * s, -1)
        for lw, (kc, vc) in zip(self.w, self.cache):
            h = F.rms_norm(x, (x.shape[-1],), lw["n1"], 1e-5)
            qkv = F.linear(h, lw["qkv"], self.bqkv).view(b, s, hq + 2 * hkv, hd)
            q, k, v = qkv.split([hq, hkv, hkv], dim=2)
            q, k = self._rope(q, pos), self._rope(k, pos)
            kc[:, :, start:start + s] = k.transpose(1, 2)
            vc[:, :, start:start + s] = v.transpose(1, 2)
            if s > 1 and start == 0:  # prefill: causal, K/V expanded to the query heads
                kk = kc[:, :, :s].repeat_interleave(hq // hkv, dim=1)
                vv = vc[:, :, :s].repeat_interleave(hq // hkv, dim=1)
                with self._attention():
                    a = F.scaled_dot_product_attention(q.transpose(1, 2), kk, vv,
                                                       is_causal=True)
                a = a.transpose(1, 2).reshape(b * s, hq * hd)
            elif s > 1:  # a chunk after `start` cached tokens: its queries end the keys
                from torch.nn.attention.bias import causal_lower_right
                kk, vv = kc[:, :, :start + s], vc[:, :, :start + s]
                if not self.native_gqa:  # expanding a long cache costs a copy of it
                    kk = kk.repeat_interleave(hq // hkv, dim=1)
                    vv = vv.repeat_interleave(hq // hkv, dim=1)
                with self._attention():
                    a = F.scaled_dot_product_attention(
                        q.transpose(1, 2), kk, vv, attn_mask=causal_lower_right(s, start + s),
                        enable_gqa=self.native_gqa)
                a = a.transpose(1, 2).reshape(b * s, hq * hd)
            else:  # decode: query heads of one KV head ride in the query-length dimension
                qg = q.view(b, hkv, hq // hkv, hd)
                with self._attention():
                    a = F.scaled_dot_product_attention(qg, kc[:, :, :start + 1],
                                                       vc[:, :, :start + 1])
                a = a.reshape(b, hq * hd)
            x = x + F.linear(a, lw["o"])
            h = F.rms_norm(x, (x.shape[-1],), lw["n2"], 1e-5)
            g, u = F.linear(h, lw["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(g) * u, lw["down"])
        last = x.view(b, s, -1)[:, -1]
        logits = F.linear(F.rms_norm(last, (last.shape[-1],), self.final_norm, 1e-5),
                          self.lm_head)
        return logits if logits_only else logits.argmax(dim=-1)

    def forward_mixed(self, dec_ids, ctx, pre_ids, pre_cache, logits_only=False):
        """One step of `dec_ids` [B] decodes, each attending to `ctx` tokens (self.cache, B
        sequences), beside one prompt `pre_ids` [1, n] prefilled from position 0 into
        `pre_cache`: the weight GEMMs run over all B + n tokens at once, attention per part
        (as engines batch a prefill chunk with decodes). Returns next ids [B + 1]."""
        bd, n = dec_ids.shape[0], pre_ids.shape[1]
        hq, hkv, hd = self.hq, self.hkv, self.hd
        pos_d = torch.full((1,), ctx - 1, device=self.dev, dtype=torch.long)
        pos_p = torch.arange(0, n, device=self.dev)
        x = torch.cat((self.embed[dec_ids], self.embed[pre_ids[0]]))
        for lw, (kc, vc), (kp, vp) in zip(self.w, self.cache, pre_cache):
            h = F.rms_norm(x, (x.shape[-1],), lw["n1"], 1e-5)
            qkv = F.linear(h, lw["qkv"], self.bqkv).view(bd + n, hq + 2 * hkv, hd)
            q, k, v = qkv.split([hq, hkv, hkv], dim=1)
            qd, kd = self._rope(q[:bd, None], pos_d), self._rope(k[:bd, None], pos_d)
            qp, kp_ = self._rope(q[None, bd:], pos_p), self._rope(k[None, bd:], pos_p)
            kc[:, :, ctx - 1:ctx] = kd.transpose(1, 2)
            vc[:, :, ctx - 1:ctx] = v[:bd, None].transpose(1, 2)
            kp[:, :, :n] = kp_.transpose(1, 2)
            vp[:, :, :n] = v[None, bd:].transpose(1, 2)
            with self._attention():
                ad = F.scaled_dot_product_attention(qd.view(bd, hkv, hq // hkv, hd), kc, vc)
                ap = F.scaled_dot_product_attention(
                    qp.transpose(1, 2), kp.repeat_interleave(hq // hkv, dim=1),
                    vp.repeat_interleave(hq // hkv, dim=1), is_causal=True)
            a = torch.cat((ad.reshape(bd, hq * hd), ap.transpose(1, 2).reshape(n, hq * hd)))
            x = x + F.linear(a, lw["o"])
            h = F.rms_norm(x, (x.shape[-1],), lw["n2"], 1e-5)
            g, u = F.linear(h, lw["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(g) * u, lw["down"])
        last = torch.cat((x[:bd], x[-1:]))
        logits = F.linear(F.rms_norm(last, (last.shape[-1],), self.final_norm, 1e-5),
                          self.lm_head)
        return logits if logits_only else logits.argmax(dim=-1)


def check_llama(dev):
    """The decode path must give the logits the prefill path gives for the same tokens
    (float32, a small config): a prompt's prefill then one decode step against a prefill of
    the prompt and that token. Returns the relative error."""
    cfg = dict(MODELS["llama-3.1-8b"], d=256, heads=8, kv_heads=2, head_dim=32, ffn=512,
               qkv_bias=True)
    m = Llama(cfg, 1, dev, torch.float32, 64, small=True)
    for lw in m.w:  # non-trivial norms
        lw["n1"].uniform_(0.5, 1.5)
        lw["n2"].uniform_(0.5, 1.5)
    ids = torch.randint(0, 1000, (3, 17), device=dev)
    m.alloc_cache(3, 17)
    ref = m.forward(ids, 0, logits_only=True)
    m.alloc_cache(3, 17)
    m.forward(ids[:, :16], 0)
    got = m.forward(ids[:, 16:], 16, logits_only=True)
    err = float((got - ref).norm() / ref.norm())
    for m.native_gqa in (False, True):  # a 7-token chunk after 10 cached ones
        m.alloc_cache(3, 17)
        m.forward(ids[:, :10], 0)
        got = m.forward(ids[:, 10:], 10, logits_only=True)
        err = max(err, float((got - ref).norm() / ref.norm()))
    m.native_gqa = False
    # a mixed step: the three decodes beside a fresh 9-token prompt
    pre = torch.randint(0, 1000, (1, 9), device=dev)
    pre_cache = [(torch.empty(1, m.hkv, 9, m.hd, device=dev), torch.empty(1, m.hkv, 9, m.hd,
                                                                         device=dev))
                 for _ in range(m.layers)]
    m.alloc_cache(3, 17)
    m.forward(ids[:, :16], 0)
    mixed = m.forward_mixed(ids[:, 16], 17, pre, pre_cache, logits_only=True)
    m.alloc_cache(1, 9)
    ref_p = m.forward(pre, 0, logits_only=True)
    ref_all = torch.cat((ref, ref_p))
    return max(err, float((mixed - ref_all).norm() / ref_all.norm()))
