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
  lane_coefficients_ = pair_coefficients(gates_.data(), gates_.size());
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

CircuitTables CircuitHead::tables() const {
  CircuitTables t;
  t.input_dim = shape_.d;
  t.padded_dim = shape_.padded_d;
  t.layers = shape_.layers;
  t.qubits = shape_.q;
  t.pairs = gates_.size();
  t.coefficients = lane_coefficients_.data();
  return t;
}

void CircuitHead::forward(size_t n, const float* x, float* angles) const {
  FAISS_THROW_IF_NOT_MSG(shape_.q > 0, "forward on an empty (default-constructed) head");
  head_forward(HeadTables{MixerTables{}, tables()}, n, x, angles);
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
