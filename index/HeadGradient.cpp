#include "index/HeadGradient.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace bloch {

namespace {

// Blocks of the batched gradient: at most kMaxBlocks buffers of entry gradients, each block at
// least kMinBlockSamples samples. Both depend on n only (never on the thread count), which is
// what makes the reduction order — and so the result — independent of the number of threads.
constexpr size_t kMaxBlocks = 32;
constexpr size_t kMinBlockSamples = 8;

// ∂L/∂χ of the encoding χ = −(tanh(x) + 1)·π/4, recovered from χ itself:
// tanh x = −4χ/π − 1, dχ/dx = −(π/4)(1 − tanh² x).
double encoding_derivative_from_angle(double chi) {
  const double t = -4.0 * chi / std::numbers::pi - 1.0;
  return -(std::numbers::pi / 4) * (1.0 - t * t);
}

// Backward of one pair (see the header for the formulas). g_chi = ∂L/∂χ_out; writes ∂L/∂χa and
// ∂L/∂χb and adds the entry gradients of U_a, U_b, U_c into e[0..3], e[4..7], e[8..11].
void pair_backward(const PairGates& g, double chi_a, double chi_b, double g_chi, double* g_a,
                   double* g_b, Complex* e) {
  const double ca = std::cos(chi_a), sa = std::sin(chi_a);
  const double cb = std::cos(chi_b), sb = std::sin(chi_b);
  const auto& A = g.a.m;
  const auto& B = g.b.m;
  const auto& C = g.c.m;
  const Complex a0 = A[0] * ca + A[1] * sa;
  const Complex a1 = A[2] * ca + A[3] * sa;
  const Complex b1 = B[2] * cb + B[3] * sb;
  const Complex c1 = C[2] * a0 + C[3] * a1;
  const double pb = std::norm(b1), na1 = std::norm(a1), nc1 = std::norm(c1);
  const double p1 = std::clamp((1.0 - pb) * na1 + pb * nc1, 0.0, 1.0);

  // dχ/dp1 = 1/sin 2χ with sin 2χ = 2√(p1·p0), clamped (kMinSin2Chi, see the header).
  const double sin2chi = 2.0 * std::sqrt(p1 * (1.0 - p1));
  const double g_p1 = g_chi / std::max(sin2chi, kMinSin2Chi);
  const double g_pb = g_p1 * (nc1 - na1);

  const Complex G_c1 = (2.0 * g_p1 * pb) * c1;
  const Complex G_a1 = (2.0 * g_p1 * (1.0 - pb)) * a1 + G_c1 * std::conj(C[3]);
  const Complex G_a0 = G_c1 * std::conj(C[2]);
  const Complex G_b1 = (2.0 * g_pb) * b1;

  // a' = U_a (ca, sa): G_{A_rk} = G_{a'_r}·v_k (v real).
  e[0] += G_a0 * ca;
  e[1] += G_a0 * sa;
  e[2] += G_a1 * ca;
  e[3] += G_a1 * sa;
  // Only row 1 of U_b and of U_c reaches p1.
  e[4 + 2] += G_b1 * cb;
  e[4 + 3] += G_b1 * sb;
  e[8 + 2] += G_c1 * std::conj(a0);
  e[8 + 3] += G_c1 * std::conj(a1);

  // d a'_r/dχa = −A_r0 sin χa + A_r1 cos χa; ∂L/∂χ = Re(conj(G)·dz/dχ).
  *g_a = std::real(std::conj(G_a0) * (A[1] * ca - A[0] * sa)) +
         std::real(std::conj(G_a1) * (A[3] * ca - A[2] * sa));
  *g_b = std::real(std::conj(G_b1) * (B[3] * cb - B[2] * sb));
}

}  // namespace

void forward_trace_double(const CircuitHead& head, const double* x, double* trace) {
  const HeadShape& s = head.shape();
  for (int j = 0; j < s.d; ++j) trace[j] = input_qubit_angle(x[j]);
  const double zero_feature = input_qubit_angle(0.0);
  for (int j = s.d; j < s.padded_d; ++j) trace[j] = zero_feature;
  double* in = trace;
  for (int l = 0; l < s.layers; ++l) {
    const int half = s.layer_inputs(l) / 2;
    double* out = in + 2 * half;
    const PairGates* g = &head.gates(l, 0);
    for (int i = 0; i < half; ++i) out[i] = merge_pair(g[i], in[i], in[i + half]);
    in = out;
  }
}

HeadGradient::HeadGradient(const CircuitHead& head) : head_(head) {
  FAISS_THROW_IF_NOT_MSG(head.qubits() > 0, "HeadGradient needs a non-empty head (q > 0)");
}

void HeadGradient::backward_trace(const double* trace, const double* grad_angles,
                                  Complex* entry_grad, double* grad_x, double* scratch) const {
  const HeadShape& s = head_.shape();
  const size_t T = s.trace_size();
  // scratch[t] = ∂L/∂(trace[t]). Every traced angle of a layer's input enters exactly one pair,
  // so the backward sweep assigns each input gradient once; only the output needs seeding.
  std::copy(grad_angles, grad_angles + s.q, scratch + (T - s.q));

  // Offsets of each layer's inputs in the trace: 0, d', d' + d'/2, …
  size_t offset = T - s.q;
  for (int l = s.layers - 1; l >= 0; --l) {
    const int n = s.layer_inputs(l), half = n / 2;
    offset -= size_t(n);
    const double* in = trace + offset;
    double* g_in = scratch + offset;
    const double* g_out = g_in + n;
    const PairGates* g = &head_.gates(l, 0);
    Complex* e = entry_grad + s.layer_param_offset(l);
    for (int i = 0; i < half; ++i) {
      if (g_out[i] == 0.0) {
        g_in[i] = g_in[i + half] = 0.0;
        continue;
      }
      pair_backward(g[i], in[i], in[i + half], g_out[i], &g_in[i], &g_in[i + half],
                    e + size_t(i) * kEntriesPerPair);
    }
  }
  if (grad_x != nullptr) {
    for (int j = 0; j < s.d; ++j) grad_x[j] = scratch[j] * encoding_derivative_from_angle(trace[j]);
  }
}

void HeadGradient::entries_to_parameters(const Complex* entry_grad, double* grad_params) const {
  const std::vector<float>& raw = head_.parameters();
  const size_t gates = raw.size() / kParamsPerGate;
  for (size_t k = 0; k < gates; ++k) {
    const Complex* G = entry_grad + 4 * k;
    if (G[0] == 0.0 && G[1] == 0.0 && G[2] == 0.0 && G[3] == 0.0) continue;
    const float* p = raw.data() + 4 * k;
    const double alpha = squash_angle(p[0]), beta = squash_angle(p[1]);
    const double gamma = squash_angle(p[2]), delta = squash_angle(p[3]);
    // U_rk = e^{iφ_rk}·ρ_rk: phases and real factors as in ZyzGate.h.
    const Complex P[4] = {std::polar(1.0, alpha - beta / 2 - delta / 2),
                          std::polar(1.0, alpha - beta / 2 + delta / 2),
                          std::polar(1.0, alpha + beta / 2 - delta / 2),
                          std::polar(1.0, alpha + beta / 2 + delta / 2)};
    const double c = std::cos(gamma / 2), s = std::sin(gamma / 2);
    const double rho[4] = {c, -s, s, c};
    const double drho[4] = {-s / 2, -c / 2, c / 2, -s / 2};  // ∂ρ_rk/∂γ
    double h[4];                                             // h_rk = ∂L/∂φ_rk
    double d_gamma = 0.0;
    for (int r = 0; r < 4; ++r) {
      h[r] = std::imag(G[r] * std::conj(P[r] * rho[r]));
      d_gamma += std::real(std::conj(G[r]) * P[r]) * drho[r];
    }
    const double d_alpha = h[0] + h[1] + h[2] + h[3];
    const double d_beta = 0.5 * (-h[0] - h[1] + h[2] + h[3]);
    const double d_delta = 0.5 * (-h[0] + h[1] - h[2] + h[3]);
    const double d_angle[4] = {d_alpha, d_beta, d_gamma, d_delta};
    for (int j = 0; j < 4; ++j)
      grad_params[4 * k + j] += d_angle[j] * squash_angle_derivative(p[j]);
  }
}

void HeadGradient::gradient(const float* x, const double* grad_angles, double* grad_params,
                            double* grad_x) const {
  std::vector<double> trace(head_.shape().trace_size()), scratch(scratch_size());
  std::vector<Complex> entries(entry_size());
  head_.forward_trace(x, trace.data());
  backward_trace(trace.data(), grad_angles, entries.data(), grad_x, scratch.data());
  entries_to_parameters(entries.data(), grad_params);
}

void HeadGradient::gradient_batch(size_t n, const float* x, const double* traces,
                                  const double* grad_angles, double* grad_params,
                                  double* grad_x) const {
  if (n == 0) return;
  const HeadShape& s = head_.shape();
  const size_t T = s.trace_size(), E = entry_size();
  const size_t blocks = std::min(kMaxBlocks, (n + kMinBlockSamples - 1) / kMinBlockSamples);
  const size_t per_block = (n + blocks - 1) / blocks;
  std::vector<Complex> entries(blocks * E);

  // A pair costs ~100 ns: below a few thousand pairs a parallel region is not worth it. The
  // thread count never changes the result.
#pragma omp parallel if (n * T > 4096)
  {
    std::vector<double> trace(traces == nullptr ? T : 0), scratch(scratch_size());
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < int64_t(blocks); ++b) {
      Complex* e = entries.data() + size_t(b) * E;
      const size_t end = std::min(n, size_t(b + 1) * per_block);
      for (size_t i = size_t(b) * per_block; i < end; ++i) {
        const double* t = traces != nullptr ? traces + i * T : trace.data();
        if (traces == nullptr) head_.forward_trace(x + i * size_t(s.d), trace.data());
        backward_trace(t, grad_angles + i * size_t(s.q), e,
                       grad_x != nullptr ? grad_x + i * size_t(s.d) : nullptr, scratch.data());
      }
    }
    // Blocks are summed in block order for every entry: independent of the thread count.
#pragma omp for schedule(static)
    for (int64_t k = 0; k < int64_t(E); ++k) {
      Complex sum = entries[size_t(k)];
      for (size_t b = 1; b < blocks; ++b) sum += entries[b * E + size_t(k)];
      entries[size_t(k)] = sum;
    }
  }
  entries_to_parameters(entries.data(), grad_params);
}

}  // namespace bloch
