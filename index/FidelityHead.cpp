#include "index/FidelityHead.h"

#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "index/BinaryIO.h"
#include "index/HeadGradient.h"

namespace bloch {

namespace {
constexpr std::array<char, 8> kHeadFileMagic = {'B', 'L', 'O', 'C', 'H', 'F', 'H', '1'};
// Version 2 adds the readout byte; version 1 records (written before readouts existed) read as
// the raw readout they were trained with. Version 3 adds the angle ranges: the lows, then the
// highs, each a vector (count, then floats) of 0 or q values; older records have none.
constexpr uint32_t kFidelityHeadFormatVersion = 3;
constexpr uint32_t kFirstFidelityHeadFormatVersion = 1;
}  // namespace

FidelityHead::FidelityHead(CircuitHead circuit, Readout readout)
    : circuit_(std::move(circuit)), readout_(readout) {}

FidelityHead::FidelityHead(FeatureMixer mixer, CircuitHead circuit, Readout readout)
    : mixer_(std::move(mixer)), circuit_(std::move(circuit)), readout_(readout) {
  FAISS_THROW_IF_NOT_FMT(circuit_.dim() == mixer_->width(),
                         "circuit input d=%d must equal the mixer width %d", circuit_.dim(),
                         mixer_->width());
}

FidelityHead FidelityHead::make(const HeadSpec& spec) {
  if (spec.butterflies == 0)
    return FidelityHead(CircuitHead(spec.d, spec.q, spec.seed), spec.readout);
  FeatureMixer mixer(spec.d, std::max(spec.q * 2, spec.min_mixer_width), spec.butterflies,
                     spec.seed ^ 0x9e3779b97f4a7c15ull);
  CircuitHead circuit(mixer.width(), spec.q, spec.seed);
  return FidelityHead(std::move(mixer), std::move(circuit), spec.readout);
}

size_t FidelityHead::num_parameters() const {
  return circuit_.num_parameters() + (mixer_ ? mixer_->num_parameters() : 0);
}

std::string FidelityHead::describe() const {
  const std::string circuit = "circuit " + circuit_.shape().describe();
  const std::string readout =
      (readout_ == Readout::kNormalized ? " + normalised readout" : std::string()) +
      (has_angle_ranges() ? " (angle ranges fitted)" : "");
  if (!mixer_) return (paper_exact() ? "paper-exact " : "") + circuit + readout;
  return "mixer d=" + std::to_string(mixer_->input_dim()) +
         " P=" + std::to_string(mixer_->width()) +
         " butterflies=" + std::to_string(mixer_->butterflies()) +
         " params=" + std::to_string(mixer_->num_parameters()) + " + " + circuit + readout +
         "; total params=" + std::to_string(num_parameters());
}

void FidelityHead::forward(size_t n, const float* x, float* angles) const {
  if (!mixer_)
    circuit_.forward(n, x, angles);
  else
    head_forward(HeadTables{mixer_->tables(), circuit_.tables()}, n, x, angles);
  if (readout_ == Readout::kNormalized) normalize_readout(n, qubits(), angles);
}

void FidelityHead::fit_angle_ranges(size_t n, const float* x) {
  FAISS_THROW_IF_NOT_FMT(n > 0 && x != nullptr, "fit_angle_ranges: needs at least one row (n=%zu)",
                         n);
  const int q = qubits();
  constexpr size_t kBatch = 4096;  // bounds the angle buffer
  std::vector<float> low(q, std::numeric_limits<float>::infinity());
  std::vector<float> high(q, -std::numeric_limits<float>::infinity());
  std::vector<float> angles(std::min(n, kBatch) * size_t(q));
  for (size_t first = 0; first < n; first += kBatch) {
    const size_t nb = std::min(kBatch, n - first);
    forward(nb, x + first * size_t(dim()), angles.data());
    for (size_t v = 0; v < nb; ++v)
      for (int i = 0; i < q; ++i) {
        const float a = angles[v * q + i];
        FAISS_THROW_IF_NOT_FMT(std::isfinite(a),
                               "fit_angle_ranges: row %zu gives a non-finite angle on qubit %d "
                               "(non-finite input?)",
                               first + v, i);
        low[i] = std::min(low[i], a);
        high[i] = std::max(high[i], a);
      }
  }
  // Angles are in [0, π/2] up to float rounding of the readout.
  constexpr float kHalfPi = float(std::numbers::pi / 2);
  for (int i = 0; i < q; ++i) {
    low[i] = std::clamp(low[i], 0.0f, kHalfPi);
    high[i] = std::clamp(high[i], low[i], kHalfPi);
  }
  set_angle_ranges(std::move(low), std::move(high));
}

void FidelityHead::set_angle_ranges(std::vector<float> low, std::vector<float> high) {
  FAISS_THROW_IF_NOT_FMT(
      low.size() == high.size() && (low.empty() || low.size() == size_t(qubits())),
      "set_angle_ranges: %zu lows and %zu highs for q=%d qubits (need q of "
      "each, or none)",
      low.size(), high.size(), qubits());
  for (size_t i = 0; i < low.size(); ++i)
    FAISS_THROW_IF_NOT_FMT(
        0 <= low[i] && low[i] <= high[i] && high[i] <= float(std::numbers::pi / 2),
        "set_angle_ranges: qubit %zu range [%g, %g] is not inside [0, π/2]", i, double(low[i]),
        double(high[i]));
  angle_low_ = std::move(low);
  angle_high_ = std::move(high);
}

Codec FidelityHead::codec(CodeType type) const {
  if (type == CodeType::k4bit && has_angle_ranges())
    return Codec(type, qubits(), angle_low_, angle_high_);
  return Codec(type, qubits());
}

bool FidelityHead::operator==(const FidelityHead& other) const {
  return mixer_ == other.mixer_ && readout_ == other.readout_ && angle_low_ == other.angle_low_ &&
         angle_high_ == other.angle_high_ && circuit_.dim() == other.circuit_.dim() &&
         circuit_.qubits() == other.circuit_.qubits() &&
         circuit_.parameters() == other.circuit_.parameters();
}

void FidelityHead::serialize(BinaryWriter& out) const {
  out.put<uint32_t>(kFidelityHeadFormatVersion);
  out.put<uint8_t>(mixer_ ? 1 : 0);
  if (mixer_) mixer_->serialize(out);
  circuit_.serialize(out);
  out.put<uint8_t>(uint8_t(readout_));
  out.put_vector(angle_low_);
  out.put_vector(angle_high_);
}

FidelityHead FidelityHead::deserialize(BinaryReader& in) {
  const auto version = in.get<uint32_t>("fidelity_head.version");
  FAISS_THROW_IF_NOT_FMT(
      version >= kFirstFidelityHeadFormatVersion && version <= kFidelityHeadFormatVersion,
      "%s: head format version %u is not supported (this build reads %u … %u)", in.what().c_str(),
      version, kFirstFidelityHeadFormatVersion, kFidelityHeadFormatVersion);
  const auto has_mixer = in.get<uint8_t>("fidelity_head.has_mixer");
  FAISS_THROW_IF_NOT_FMT(has_mixer <= 1, "%s: bad has_mixer flag %u", in.what().c_str(),
                         unsigned(has_mixer));
  std::optional<FeatureMixer> mixer;
  if (has_mixer) mixer = FeatureMixer::deserialize(in);
  CircuitHead circuit = CircuitHead::deserialize(in);
  Readout readout = Readout::kRaw;
  if (version >= 2) {
    const auto tag = in.get<uint8_t>("fidelity_head.readout");
    FAISS_THROW_IF_NOT_FMT(tag <= uint8_t(Readout::kNormalized), "%s: unknown readout %u",
                           in.what().c_str(), unsigned(tag));
    readout = Readout(tag);
  }
  FidelityHead head = mixer ? FidelityHead(std::move(*mixer), std::move(circuit), readout)
                            : FidelityHead(std::move(circuit), readout);
  if (version >= 3) {
    auto low = in.get_vector<float>("fidelity_head.range_low", uint64_t(head.qubits()));
    auto high = in.get_vector<float>("fidelity_head.range_high", uint64_t(head.qubits()));
    try {
      head.set_angle_ranges(std::move(low), std::move(high));
    } catch (const faiss::FaissException& e) {
      FAISS_THROW_FMT("%s: %s", in.what().c_str(), e.what());
    }
  }
  return head;
}

std::string FidelityHead::to_bytes() const {
  BinaryWriter out;
  out.put(kHeadFileMagic);
  serialize(out);
  return out.finish_with_checksum();
}

FidelityHead FidelityHead::from_bytes(std::string_view bytes, const std::string& what) {
  FAISS_THROW_IF_NOT_FMT(bytes.starts_with(std::string_view(kHeadFileMagic.data(), 8)),
                         "%s: bad magic (not a bloch head file)", what.c_str());
  BinaryReader in(bytes, what);
  in.get<std::array<char, 8>>("head.magic");
  FidelityHead head = deserialize(in);
  in.expect_end();
  return head;
}

void FidelityHead::save(const std::string& path) const {
  write_file_atomically(path, to_bytes());
}

FidelityHead FidelityHead::load(const std::string& path) {
  return from_bytes(read_file(path), "head file '" + path + "'");
}

}  // namespace bloch
