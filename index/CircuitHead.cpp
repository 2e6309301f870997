#include "index/CircuitHead.h"

#include <faiss/impl/FaissAssert.h>

#include <bit>
#include <random>

#include "index/BinaryIO.h"

namespace bloch {

namespace {
constexpr char kHeadMagic[8] = {'B', 'L', 'O', 'C', 'H', 'H', 'D', '1'};
constexpr uint32_t kHeadFormatVersion = 1;
constexpr int kMaxDim = 1 << 16;
}  // namespace

HeadShape HeadShape::make(int d, int q) {
  FAISS_THROW_IF_NOT_FMT(d > 0 && d <= kMaxDim, "head input dimension d=%d must be in [1, %d]", d,
                         kMaxDim);
  FAISS_THROW_IF_NOT_FMT(q > 0 && q <= d, "head qubits q=%d must be in [1, d=%d]", q, d);
  HeadShape s;
  s.d = d;
  s.q = q;
  // Smallest m ≥ 1 with q·2^m ≥ d, i.e. m = max(1, ⌈log2(d/q)⌉).
  s.layers = 1;
  while ((int64_t(q) << s.layers) < d) ++s.layers;
  s.padded_d = q << s.layers;
  return s;
}

size_t HeadShape::layer_param_offset(int l) const {
  size_t pairs = 0;
  for (int k = 0; k < l; ++k) pairs += layer_inputs(k) / 2;
  return pairs * kParamsPerPair;
}

std::string HeadShape::describe() const {
  return "d=" + std::to_string(d) + " d'=" + std::to_string(padded_d) + " (zero-padded +" +
         std::to_string(padded_d - d) + ") q=" + std::to_string(q) +
         " m=" + std::to_string(layers) + " L=" + std::to_string(groups()) +
         " params=" + std::to_string(num_parameters());
}

double input_qubit_angle(double x) {
  const double theta = (std::tanh(x) + 1.0) * std::numbers::pi / 2;
  return -theta / 2;
}

namespace {

/// (cos χ, sin χ) of input_qubit_angle(x) without a sin/cos call. χ = −α with
/// α = (1 + tanh x)·π/4 = π/4 + β, β = (π/4)·tanh x ∈ (−π/4, π/4), so
///   cos χ = cos α = (cos β − sin β)/√2,   sin χ = −sin α = −(cos β + sin β)/√2,
/// and on |β| ≤ π/4 the Taylor series of sin β to β¹⁷ and cos β to β¹⁶ are exact to double
/// rounding (first omitted terms below 2e−17). tanh x = 1 − 2/(e^{2x} + 1) is exact to a few
/// ulp of 1 in absolute terms, all that β needs, and costs one exp instead of tanh's expm1.
inline void input_amplitudes(double x, double* c, double* s) {
  const double beta = std::numbers::pi / 4 * (1.0 - 2.0 / (std::exp(2.0 * x) + 1.0));
  const double b2 = beta * beta;
  // Horner in β²: sin β = β Σ (−1)^k β^{2k}/(2k+1)!, cos β = Σ (−1)^k β^{2k}/(2k)!, k = 8 … 0.
  static constexpr double kSin[] = {1.0 / 355687428096000.0,
                                    -1.0 / 1307674368000.0,
                                    1.0 / 6227020800.0,
                                    -1.0 / 39916800.0,
                                    1.0 / 362880.0,
                                    -1.0 / 5040.0,
                                    1.0 / 120.0,
                                    -1.0 / 6.0,
                                    1.0};
  static constexpr double kCos[] = {1.0 / 20922789888000.0,
                                    -1.0 / 87178291200.0,
                                    1.0 / 479001600.0,
                                    -1.0 / 3628800.0,
                                    1.0 / 40320.0,
                                    -1.0 / 720.0,
                                    1.0 / 24.0,
                                    -0.5,
                                    1.0};
  double sin_b = 0, cos_b = 0;
  for (int k = 0; k < 9; ++k) {
    sin_b = sin_b * b2 + kSin[k];
    cos_b = cos_b * b2 + kCos[k];
  }
  sin_b *= beta;
  constexpr double kInvSqrt2 = 0.70710678118654752440;
  *c = (cos_b - sin_b) * kInvSqrt2;
  *s = -(cos_b + sin_b) * kInvSqrt2;
}

}  // namespace

CircuitHead::CircuitHead(int d, int q, uint64_t seed) : shape_(HeadShape::make(d, q)) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> params(shape_.num_parameters());
  for (auto& p : params) p = normal(rng);
  set_parameters(std::move(params));
}

void CircuitHead::set_parameters(std::vector<float> params) {
  FAISS_THROW_IF_NOT_FMT(params.size() == shape_.num_parameters(),
                         "head expects %zu raw parameters, got %zu", shape_.num_parameters(),
                         params.size());
  params_ = std::move(params);
  rebuild_gates();
}

void CircuitHead::rebuild_gates() {
  gates_.resize(params_.size() / kParamsPerPair);
  for (size_t g = 0; g < gates_.size(); ++g)
    gates_[g] = PairGates::from_raw(params_.data() + g * kParamsPerPair);
}

const PairGates& CircuitHead::gates(int layer, int pair) const {
  return gates_[shape_.layer_param_offset(layer) / kParamsPerPair + pair];
}

void CircuitHead::forward_trace(const float* x, double* trace) const {
  for (int j = 0; j < shape_.d; ++j) trace[j] = input_qubit_angle(x[j]);
  const double zero_feature = input_qubit_angle(0.0);
  for (int j = shape_.d; j < shape_.padded_d; ++j) trace[j] = zero_feature;

  const PairGates* g = gates_.data();
  double* in = trace;
  for (int l = 0; l < shape_.layers; ++l) {
    const int half = shape_.layer_inputs(l) / 2;
    double* out = in + 2 * half;
    // Qubit i (kept) pairs with qubit i + n/2 (dropped).
    for (int i = 0; i < half; ++i) out[i] = merge_pair(g[i], in[i], in[i + half]);
    g += half;
    in = out;
  }
}

template <typename T>
void CircuitHead::forward_one(const T* x, double* amplitudes, float* angles) const {
  // Inference carries each qubit as its amplitudes (cos χ, sin χ) = (√(1 − p1), √p1) from layer
  // to layer, so the only trigonometry is at the inputs and in the final atan2; forward_trace
  // keeps every layer's angles (for the gradients) and is the reference this equals.
  const int n0 = shape_.padded_d;
  double* c = amplitudes;
  double* s = amplitudes + n0;
  for (int j = 0; j < n0; ++j) input_amplitudes(j < shape_.d ? double(x[j]) : 0.0, &c[j], &s[j]);
  const PairGates* g = gates_.data();
  for (int l = 0; l < shape_.layers; ++l) {
    const int half = shape_.layer_inputs(l) / 2;
    // Pair i writes slot i, which no later pair of the layer reads (they read i' > i and
    // i' + half), so each layer runs in place.
    for (int i = 0; i < half; ++i) {
      const double p1 = merge_pair_p1(g[i], c[i], s[i], c[i + half], s[i + half]);
      c[i] = std::sqrt(1.0 - p1);
      s[i] = std::sqrt(p1);
    }
    g += half;
  }
  for (int i = 0; i < shape_.q; ++i) angles[i] = float(std::atan2(s[i], c[i]));
}

template void CircuitHead::forward_one<float>(const float*, double*, float*) const;
template void CircuitHead::forward_one<double>(const double*, double*, float*) const;

void CircuitHead::forward(size_t n, const float* x, float* angles) const {
  FAISS_THROW_IF_NOT_MSG(shape_.q > 0, "forward on an empty (default-constructed) head");
  const size_t q = shape_.q;
  // A single query (the search path) runs inline: a parallel region would cost more than it.
#pragma omp parallel if (n > 1)
  {
    std::vector<double> amplitudes(amplitude_scratch_size());
#pragma omp for schedule(static)
    for (int64_t i = 0; i < int64_t(n); ++i) {
      forward_one(x + i * size_t(shape_.d), amplitudes.data(), angles + i * q);
    }
  }
}

void CircuitHead::serialize(BinaryWriter& out) const {
  out.put<uint32_t>(kHeadFormatVersion);
  out.put<int32_t>(shape_.d);
  out.put<int32_t>(shape_.q);
  out.put_vector(params_);
}

CircuitHead CircuitHead::deserialize(BinaryReader& in) {
  const auto version = in.get<uint32_t>("head.version");
  FAISS_THROW_IF_NOT_FMT(version == kHeadFormatVersion,
                         "%s: head format version %u is not supported (this build reads %u)",
                         in.what().c_str(), version, kHeadFormatVersion);
  const auto d = in.get<int32_t>("head.d");
  const auto q = in.get<int32_t>("head.q");
  CircuitHead head;
  head.shape_ = HeadShape::make(d, q);
  head.set_parameters(in.get_vector<float>("head.parameters", head.shape_.num_parameters()));
  return head;
}

void CircuitHead::save(const std::string& path) const {
  BinaryWriter out;
  out.put(kHeadMagic);
  serialize(out);
  write_file_atomically(path, out.finish_with_checksum());
}

CircuitHead CircuitHead::load(const std::string& path) {
  const std::string bytes = read_file(path);
  FAISS_THROW_IF_NOT_FMT(std::string_view(bytes).starts_with(std::string_view(kHeadMagic, 8)),
                         "head file '%s': bad magic (not a bloch head file)", path.c_str());
  BinaryReader in(bytes, "head file '" + path + "'");
  in.get<std::array<char, 8>>("head.magic");
  CircuitHead head = deserialize(in);
  in.expect_end();
  return head;
}

}  // namespace bloch
