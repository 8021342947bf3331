"""The Triton kernels of :mod:`spikeforge.functional._triton_kernel` (loaded by it once per interpreter mode:
``triton.jit`` reads ``TRITON_INTERPRET`` when the decorators run, so this module is executed per mode)."""

# ruff: noqa: N803
import triton
import triton.language as tl


@triton.jit
def _surrogate(z, p, c, SG: tl.constexpr):
    az = tl.abs(z)
    if SG == 0:
        g = tl.where(az < 0.5 * p, 1.0 / p, 0.0)
    elif SG == 1:
        g = tl.where(az <= 0.5 * p, 1.0 / p, 0.0)
    elif SG == 2:
        g = tl.maximum(1.0 - az / p, 0.0) / p
    elif SG == 3:
        sg = 1.0 / (1.0 + tl.exp(-p * z))
        g = p * sg * (1.0 - sg)
    elif SG == 4:
        u = c * z  # c = pi * alpha / 2
        g = p / (2.0 * (1.0 + u * u))
    else:
        th = 2.0 / (1.0 + tl.exp(-2.0 * p * z)) - 1.0  # tanh(p z)
        g = tl.where(az <= 0.5, p * (1.0 - th * th) / c, 0.0)  # c = 2 tanh(p / 2)
    return g

@triton.jit
def _forward(x_ptr, v0_ptr, thr_ptr, prm_ptr, s_ptr, h_ptr, v_ptr, N, T, thr_t_stride, thr_n_stride,
             RESET: tl.constexpr, TERNARY: tl.constexpr, SOFT_BY_THR: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    decay = tl.load(prm_ptr + 0)
    gain = tl.load(prm_ptr + 1)
    v_reset = tl.load(prm_ptr + 2)
    amount = tl.load(prm_ptr + 3)
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    for t in range(T):
        o = t * N + offs
        xv = tl.load(x_ptr + o, mask=mask, other=0.0)
        thr = tl.load(thr_ptr + t * thr_t_stride + offs * thr_n_stride, mask=mask, other=1.0)
        h = decay * v + gain * xv
        up = h >= thr
        if TERNARY:
            down = h <= -thr
            s = up.to(h.dtype) - down.to(h.dtype)
            fired = up | down
        else:
            s = up.to(h.dtype)
            fired = up
        if RESET == 0:
            v = tl.where(fired, v_reset, h)
        elif RESET == 1:
            if SOFT_BY_THR:
                v = tl.where(fired, h - thr * s, h)
            else:
                v = tl.where(fired, h - amount * s, h)
        else:
            v = h
        tl.store(h_ptr + o, h, mask=mask)
        tl.store(s_ptr + o, s, mask=mask)
    tl.store(v_ptr + offs, v, mask=mask)

@triton.jit
def _backward(gs_ptr, gh_ptr, gv_ptr, h_ptr, thr_ptr, prm_ptr, gx_ptr, gv0_ptr, N, T, thr_t_stride, thr_n_stride,
              RESET: tl.constexpr, TERNARY: tl.constexpr, SOFT_BY_THR: tl.constexpr, HAS_GH: tl.constexpr,
              DETACH: tl.constexpr, SG: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    decay = tl.load(prm_ptr + 0)
    gain = tl.load(prm_ptr + 1)
    v_reset = tl.load(prm_ptr + 2)
    amount = tl.load(prm_ptr + 3)
    p = tl.load(prm_ptr + 4)
    c = tl.load(prm_ptr + 5)
    g_v = tl.load(gv_ptr + offs, mask=mask, other=0.0)
    for i in range(T):
        t = T - 1 - i
        o = t * N + offs
        h = tl.load(h_ptr + o, mask=mask, other=0.0)
        thr = tl.load(thr_ptr + t * thr_t_stride + offs * thr_n_stride, mask=mask, other=1.0)
        g_s = tl.load(gs_ptr + o, mask=mask, other=0.0)
        up = h >= thr
        if TERNARY:
            down = h <= -thr
            s = up.to(h.dtype) - down.to(h.dtype)
            fired = up | down
            sg = _surrogate(tl.abs(h) - thr, p, c, SG)
        else:
            s = up.to(h.dtype)
            fired = up
            sg = _surrogate(h - thr, p, c, SG)
        if RESET == 0:  # v = h (1 - |s|) + v_reset |s|; d|s| = sign(s) ds
            g_h = tl.where(fired, 0.0, g_v)
            g_spike = g_s
            if not DETACH:
                if TERNARY:
                    g_spike = g_s + g_v * (v_reset - h) * s
                else:
                    g_spike = g_s + g_v * (v_reset - h)
        elif RESET == 1:  # v = h - amount s
            g_h = g_v
            g_spike = g_s
            if not DETACH:
                if SOFT_BY_THR:
                    g_spike = g_s - thr * g_v
                else:
                    g_spike = g_s - amount * g_v
        else:
            g_h = g_v
            g_spike = g_s
        g_h = g_h + g_spike * sg
        if HAS_GH:
            g_h = g_h + tl.load(gh_ptr + o, mask=mask, other=0.0)
        tl.store(gx_ptr + o, g_h * gain, mask=mask)
        g_v = g_h * decay
    tl.store(gv0_ptr + offs, g_v, mask=mask)

