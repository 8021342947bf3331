// spikeforge fused LIF neuron, CPU: one memory pass per time step, forward and backward.
// Same math as spikeforge/functional/neuron.py (reference_multistep, the specification); loaded by
// spikeforge/functional/_cpu_kernel.py with torch.utils.cpp_extension.load. See that module for what it covers.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <cmath>
#include <algorithm>
#include <vector>

namespace {

constexpr int64_t kBlock = 4096;  // neurons per block: the block's state and surrogate values stay in L1/L2

// g'(z) for a block, one branch-free loop per family (mirrors functional/surrogate.py)
// TERNARY: the surrogate is applied symmetrically, at distance |h| - thr (functional/neuron.py); thr: one per neuron
template <typename scalar_t, bool TERNARY>
void surrogate_grad(const scalar_t* __restrict h_in, const scalar_t* __restrict thr, int64_t id, scalar_t p,
                    scalar_t* __restrict out, int64_t n, scalar_t* __restrict abs_buf) {
  const scalar_t half = scalar_t(0.5), one = scalar_t(1), zero = scalar_t(0);
  const scalar_t* __restrict h = h_in;
  if constexpr (TERNARY) {
    for (int64_t i = 0; i < n; ++i) abs_buf[i] = std::abs(h_in[i]);
    h = abs_buf;
  }
  switch (id) {
    case 0: for (int64_t i = 0; i < n; ++i) out[i] = std::abs(h[i] - thr[i]) < half * p ? one / p : zero; break;
    case 1: for (int64_t i = 0; i < n; ++i) out[i] = std::abs(h[i] - thr[i]) <= half * p ? one / p : zero; break;
    case 2:
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t r = one - std::abs(h[i] - thr[i]) / p;
        out[i] = (r > zero ? r : zero) / p;
      }
      break;
    case 3:
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t sg = one / (one + std::exp(-p * (h[i] - thr[i])));
        out[i] = p * sg * (one - sg);
      }
      break;
    case 4: {
      const scalar_t c = scalar_t(M_PI / 2) * p;
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t u = c * (h[i] - thr[i]);
        out[i] = p / (scalar_t(2) * (one + u * u));
      }
      break;
    }
    default: {
      const scalar_t denom = scalar_t(2) * std::tanh(p / scalar_t(2));
      for (int64_t i = 0; i < n; ++i) {
        const scalar_t z = h[i] - thr[i];
        const scalar_t th = std::tanh(p * z);
        out[i] = std::abs(z) <= half ? p * (one - th * th) / denom : zero;
      }
    }
  }
}

// one step of one block, forward. RESET: 0 hard, 1 soft, 2 none. A separate function with restrict pointers so
// that GCC vectorises it (the selects become blends; -fno-trapping-math lets it speculate the compare).
template <typename S, int RESET, bool TERNARY>
inline void forward_step(const S* __restrict xt, S* __restrict st, S* __restrict ht, S* __restrict v, int64_t m,
                         S decay, S gain, const S* __restrict thr, S v_reset, S amount) {
  for (int64_t i = 0; i < m; ++i) {
    const S in = gain * xt[i];  // gain = 1 exactly unless decay_input
    const S hv = decay * v[i] + in;
    const bool up = hv >= thr[i];
    const bool down = TERNARY && hv <= -thr[i];  // ternary: s = H(h - thr) - H(-h - thr)
    const S sv = up ? S(1) : (down ? S(-1) : S(0));
    ht[i] = hv;
    st[i] = sv;
    S vn;
    if constexpr (RESET == 0) vn = (up || down) ? v_reset : hv;
    else if constexpr (RESET == 1) vn = (up || down) ? hv - amount * sv : hv;
    else vn = hv;
    v[i] = vn;
  }
}

// one step of one block, backward; keep = 0 when the reset is detached, else 1
template <typename S, int RESET, bool HAS_GH, bool TERNARY>
inline void backward_step(const S* __restrict gst, const S* __restrict ht, const S* __restrict ght,
                          const S* __restrict sg, S* __restrict gxt, S* __restrict gv, int64_t m, S decay, S gain,
                          const S* __restrict thr, S v_reset, S amount, S keep) {
  for (int64_t i = 0; i < m; ++i) {
    const S hv = ht[i];
    const S g_v = gv[i];
    S g_h;
    if constexpr (RESET == 0) {  // v = h (1 - |s|) + v_reset |s|; d|s|/dh = sign(s) ds/dh (as autograd's abs)
      const bool up = hv >= thr[i];
      const bool down = TERNARY && hv <= -thr[i];
      const S sign_s = up ? S(1) : (down ? S(-1) : S(0));
      g_h = ((up || down) ? S(0) : g_v) + gst[i] * sg[i];
      if constexpr (HAS_GH) g_h = g_h + ght[i];
      if constexpr (TERNARY) g_h = g_h + (keep * g_v * (v_reset - hv)) * sg[i] * sign_s;
      else g_h = g_h + (keep * g_v * (v_reset - hv)) * sg[i];
    } else if constexpr (RESET == 1) {  // v = h - amount s
      g_h = g_v + (gst[i] - keep * amount * g_v) * sg[i];
      if constexpr (HAS_GH) g_h = g_h + ght[i];
    } else {
      g_h = g_v + gst[i] * sg[i];
      if constexpr (HAS_GH) g_h = g_h + ght[i];
    }
    gxt[i] = g_h * gain;
    gv[i] = g_h * decay;
  }
}

// the block's thresholds: one per neuron (thr_elem, time-invariant) or the scalar thr everywhere
template <typename S>
inline void load_threshold(S* th, S thr, const S* thr_elem, int64_t b0, int64_t m) {
  if (thr_elem) std::copy(thr_elem + b0, thr_elem + b0 + m, th);
  else std::fill(th, th + m, thr);
}

template <typename S, int RESET, bool TERNARY>
void forward_impl(const S* x, const S* v0, S* s, S* h, S* v_last, int64_t T, int64_t N, S decay, S gain, S thr,
                  const S* thr_elem, S v_reset, S amount) {
  at::parallel_for(0, N, kBlock, [&](int64_t begin, int64_t end) {
    std::vector<S> v(kBlock), th(kBlock);
    for (int64_t b0 = begin; b0 < end; b0 += kBlock) {
      const int64_t m = std::min(end - b0, kBlock);
      std::copy(v0 + b0, v0 + b0 + m, v.data());
      load_threshold(th.data(), thr, thr_elem, b0, m);
      for (int64_t t = 0; t < T; ++t) {
        forward_step<S, RESET, TERNARY>(x + t * N + b0, s + t * N + b0, h + t * N + b0, v.data(), m, decay, gain,
                                        th.data(), v_reset, amount);
      }
      std::copy(v.data(), v.data() + m, v_last + b0);
    }
  });
}

template <typename S, int RESET, bool HAS_GH, bool TERNARY>
void backward_impl(const S* g_s, const S* g_hseq, const S* g_vT, const S* h, S* g_x, S* g_v0, int64_t T, int64_t N,
                   S decay, S gain, S thr, const S* thr_elem, S v_reset, S amount, S keep, int64_t sg_id,
                   S sg_p) {
  at::parallel_for(0, N, kBlock, [&](int64_t begin, int64_t end) {
    std::vector<S> gv(kBlock), sg(kBlock), th(kBlock), abs_buf(TERNARY ? kBlock : 0);
    for (int64_t b0 = begin; b0 < end; b0 += kBlock) {
      const int64_t m = std::min(end - b0, kBlock);
      load_threshold(th.data(), thr, thr_elem, b0, m);
      if (g_vT) std::copy(g_vT + b0, g_vT + b0 + m, gv.data());
      else std::fill(gv.begin(), gv.begin() + m, S(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t o = t * N + b0;
        surrogate_grad<S, TERNARY>(h + o, th.data(), sg_id, sg_p, sg.data(), m, abs_buf.data());
        backward_step<S, RESET, HAS_GH, TERNARY>(g_s + o, h + o, HAS_GH ? g_hseq + o : nullptr, sg.data(), g_x + o,
                                        gv.data(), m, decay, gain, th.data(), v_reset, amount, keep);
      }
      std::copy(gv.data(), gv.data() + m, g_v0 + b0);
    }
  });
}

// compile-time reset mode from the runtime id (0 hard, 1 soft, 2 none)
template <typename S, bool TERNARY, typename Run>
void forward_for_reset(int64_t reset, Run run) {
  if (reset == 0) run(forward_impl<S, 0, TERNARY>);
  else if (reset == 1) run(forward_impl<S, 1, TERNARY>);
  else run(forward_impl<S, 2, TERNARY>);
}

template <typename S, bool HAS_GH, bool TERNARY, typename Run>
void backward_for_reset(int64_t reset, Run run) {
  if (reset == 0) run(backward_impl<S, 0, HAS_GH, TERNARY>);
  else if (reset == 1) run(backward_impl<S, 1, HAS_GH, TERNARY>);
  else run(backward_impl<S, 2, HAS_GH, TERNARY>);
}

}  // namespace

// thr_elem: optional time-invariant threshold per neuron (numel = x[0].numel(), x's dtype); else the scalar thr
static const void* threshold_ptr(const c10::optional<torch::Tensor>& thr_elem, const torch::Tensor& like, int64_t N) {
  if (!thr_elem) return nullptr;
  TORCH_CHECK(thr_elem->is_contiguous() && thr_elem->numel() == N && thr_elem->scalar_type() == like.scalar_type(),
              "spikeforge C++ kernel: the per-neuron threshold must be contiguous, one value per neuron, dtype of x");
  return thr_elem->data_ptr();
}

std::vector<torch::Tensor> lif_forward(torch::Tensor x, torch::Tensor v0, double decay, bool decay_input, double thr,
                                       c10::optional<torch::Tensor> thr_elem, int64_t reset, double v_reset,
                                       double amount, bool ternary) {
  TORCH_CHECK(x.device().is_cpu() && x.is_contiguous() && v0.is_contiguous(), "lif_forward: contiguous CPU tensors");
  TORCH_CHECK(reset >= 0 && reset <= 2, "lif_forward: reset id must be 0, 1 or 2");
  const int64_t T = x.size(0);
  const int64_t N = x.numel() / T;
  TORCH_CHECK(v0.numel() == N && v0.scalar_type() == x.scalar_type(), "lif_forward: v0 must be one value per neuron");
  auto s = torch::empty_like(x);
  auto h = torch::empty_like(x);
  auto v_last = torch::empty_like(v0);
  const void* th = threshold_ptr(thr_elem, x, N);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lif_forward", [&] {
    const scalar_t d = scalar_t(decay);
    const scalar_t gain = decay_input ? scalar_t(1) - d : scalar_t(1);
    auto run = [&](auto fn) {
      fn(x.data_ptr<scalar_t>(), v0.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(),
         v_last.data_ptr<scalar_t>(), T, N, d, gain, scalar_t(thr), static_cast<const scalar_t*>(th),
         scalar_t(v_reset), scalar_t(amount));
    };
    ternary ? forward_for_reset<scalar_t, true>(reset, run) : forward_for_reset<scalar_t, false>(reset, run);
  });
  return {s, h, v_last};
}

std::vector<torch::Tensor> lif_backward(torch::Tensor g_s, c10::optional<torch::Tensor> g_hseq,
                                        c10::optional<torch::Tensor> g_vT, torch::Tensor h, double decay,
                                        bool decay_input, double thr, c10::optional<torch::Tensor> thr_elem,
                                        int64_t reset, double v_reset, double amount, bool detach, int64_t sg_id,
                                        double sg_p, bool ternary) {
  TORCH_CHECK(h.device().is_cpu() && h.is_contiguous() && g_s.is_contiguous(), "lif_backward: contiguous CPU tensors");
  TORCH_CHECK(reset >= 0 && reset <= 2 && sg_id >= 0 && sg_id <= 5, "lif_backward: bad reset or surrogate id");
  const int64_t T = h.size(0);
  const int64_t N = h.numel() / T;
  TORCH_CHECK(g_s.sizes() == h.sizes() && (!g_hseq || g_hseq->sizes() == h.sizes()) && (!g_vT || g_vT->numel() == N),
              "lif_backward: gradient shapes do not match h");
  auto g_x = torch::empty_like(h);
  auto g_v0 = torch::empty({N}, h.options());
  const void* th = threshold_ptr(thr_elem, h, N);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "lif_backward", [&] {
    const scalar_t d = scalar_t(decay);
    const scalar_t gain = decay_input ? scalar_t(1) - d : scalar_t(1);
    const bool has_gh = g_hseq.has_value();
    auto run = [&](auto fn) {
      fn(g_s.data_ptr<scalar_t>(), has_gh ? g_hseq->data_ptr<scalar_t>() : nullptr,
         g_vT ? g_vT->data_ptr<scalar_t>() : nullptr, h.data_ptr<scalar_t>(), g_x.data_ptr<scalar_t>(),
         g_v0.data_ptr<scalar_t>(), T, N, d, gain, scalar_t(thr), static_cast<const scalar_t*>(th),
         scalar_t(v_reset), scalar_t(amount),
         detach ? scalar_t(0) : scalar_t(1), sg_id, scalar_t(sg_p));
    };
    if (ternary) {
      has_gh ? backward_for_reset<scalar_t, true, true>(reset, run)
             : backward_for_reset<scalar_t, false, true>(reset, run);
    } else {
      has_gh ? backward_for_reset<scalar_t, true, false>(reset, run)
             : backward_for_reset<scalar_t, false, false>(reset, run);
    }
  });
  return {g_x, g_v0};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("lif_forward", &lif_forward, "fused LIF forward: (s, h, v_last)");
  m.def("lif_backward", &lif_backward, "fused LIF backward: (g_x, g_v0)");
}
