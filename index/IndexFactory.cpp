#include "index/IndexFactory.h"

#include <faiss/IndexHNSW.h>
#include <faiss/impl/FaissAssert.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "index/IndexFidelityFastScan.h"
#include "index/IndexFidelityFlat.h"
#include "index/IndexFidelityIVF.h"

namespace bloch {

namespace {

// Widest mixer a factory string may ask for: 2^16 features already cost ~0.5 M rotations per
// vector with three butterflies.
constexpr int kMaxMixerWidth = 1 << 16;

constexpr const char* kGrammar =
    "expected \"QC<q>[x<bits>][B<butterflies>[W<width>]][raw],<kind>\" with bits 4|8|32 and "
    "kind Flat, HNSW<M> or IVF<nlist>, or "
    "\"QC<q>x4fs[B<butterflies>[W<width>]][raw],Refine(QC<q>x<bits>)\" with bits 8|32, e.g. "
    "\"QC128,Flat\", \"QC128B0raw,HNSW32\", \"QC256,IVF1024\" or \"QC128x4fs,Refine(QC128x8)\"";

int parse_int(const std::string& text, const std::string& spec, const char* what) {
  try {
    return std::stoi(text);
  } catch (const std::exception&) {
    FAISS_THROW_FMT("index spec '%s': %s '%s' is not a number", spec.c_str(), what, text.c_str());
  }
}

long long parse_long(const std::string& text, const std::string& spec, const char* what) {
  try {
    return std::stoll(text);
  } catch (const std::exception&) {
    FAISS_THROW_FMT("index spec '%s': %s '%s' is not a number", spec.c_str(), what, text.c_str());
  }
}

// kind is `prefix` followed by one or more digits and nothing else.
bool has_number_after(const std::string& kind, const std::string& prefix) {
  return kind.size() > prefix.size() && kind.compare(0, prefix.size(), prefix) == 0 &&
         std::all_of(kind.begin() + prefix.size(), kind.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

CodeType code_type_of_bits(int bits, const std::string& spec) {
  switch (bits) {
    case 4:
      return CodeType::k4bit;
    case 8:
      return CodeType::k8bit;
    case 32:
      return CodeType::kFloat;
  }
  FAISS_THROW_FMT("index spec '%s': code bits %d must be 4, 8 or 32 (float angles)", spec.c_str(),
                  bits);
}

// head "QC<q>x4fs…", kind := "Refine(QC" q "x" bits ")" with the head's q and bits 8 or 32.
std::unique_ptr<faiss::Index> make_fast_scan(const std::string& spec, const HeadSpec& hs,
                                             CodeType scan_code, const std::string& kind) {
  FAISS_THROW_IF_NOT_FMT(scan_code == CodeType::k4bit,
                         "index spec '%s': fast scan (fs) needs 4-bit codes (x4fs); %s",
                         spec.c_str(), kGrammar);
  const std::string open = "Refine(QC", close = ")";
  const bool shape_ok = kind.size() > open.size() + close.size() &&
                        kind.compare(0, open.size(), open) == 0 && kind.back() == ')';
  FAISS_THROW_IF_NOT_FMT(shape_ok,
                         "index spec '%s': a fast-scan head needs the kind Refine(QC<q>x<bits>), "
                         "not '%s'; %s",
                         spec.c_str(), kind.c_str(), kGrammar);
  const std::string inner = kind.substr(open.size(), kind.size() - open.size() - 1);
  const size_t x = inner.find('x');
  FAISS_THROW_IF_NOT_FMT(
      x != std::string::npos && x > 0 && x + 1 < inner.size() &&
          std::all_of(
              inner.begin(), inner.end(),
              [](char c) { return c == 'x' || std::isdigit(static_cast<unsigned char>(c)); }),
      "index spec '%s': Refine(QC%s) is not Refine(QC<q>x<bits>); %s", spec.c_str(), inner.c_str(),
      kGrammar);
  const int refine_q = parse_int(inner.substr(0, x), spec, "Refine qubits");
  const int refine_bits = parse_int(inner.substr(x + 1), spec, "Refine bits");
  FAISS_THROW_IF_NOT_FMT(refine_q == hs.q,
                         "index spec '%s': Refine(QC%d…) must re-rank the head's q=%d qubits",
                         spec.c_str(), refine_q, hs.q);
  FAISS_THROW_IF_NOT_FMT(refine_bits == 8 || refine_bits == 32,
                         "index spec '%s': Refine codes of %d bits must be 8 or 32 (float)",
                         spec.c_str(), refine_bits);
  return std::make_unique<IndexFidelityFastScan>(
      hs, refine_bits == 8 ? CodeType::k8bit : CodeType::kFloat);
}

}  // namespace

std::unique_ptr<faiss::Index> index_factory(int d, const std::string& spec, uint64_t seed) {
  const auto comma = spec.find(',');
  FAISS_THROW_IF_NOT_FMT(comma != std::string::npos, "index spec '%s': no ',' before the kind; %s",
                         spec.c_str(), kGrammar);
  const std::string head = spec.substr(0, comma), kind = spec.substr(comma + 1);

  // head := "QC" digits [ "x" digits ] [ "B" digits [ "W" digits ] ] [ "raw" ]
  size_t pos = 0;
  auto take_number = [&](const char* prefix, std::string& out) {
    const size_t n = std::strlen(prefix);
    if (head.compare(pos, n, prefix) != 0) return false;
    size_t end = pos + n;
    while (end < head.size() && std::isdigit(static_cast<unsigned char>(head[end]))) ++end;
    if (end == pos + n) return false;
    out = head.substr(pos + n, end - pos - n);
    pos = end;
    return true;
  };
  auto take_literal = [&](const char* literal) {
    const size_t n = std::strlen(literal);
    if (head.compare(pos, n, literal) != 0) return false;
    pos += n;
    return true;
  };
  std::string q_text, bits_text, butterflies_text, width_text;
  bool fast_scan = false, raw_readout = false;
  const bool head_ok =
      take_number("QC", q_text) && (take_number("x", bits_text), true) &&
      (fast_scan = !bits_text.empty() && take_literal("fs"), true) &&
      (take_number("B", butterflies_text) && (take_number("W", width_text), true), true) &&
      (raw_readout = take_literal("raw"), true) && pos == head.size();
  FAISS_THROW_IF_NOT_FMT(
      head_ok,
      "index spec '%s': head '%s' is not QC<q>[x<bits>[fs]][B<butterflies>[W<width>]][raw]; %s",
      spec.c_str(), head.c_str(), kGrammar);
  HeadSpec hs;
  hs.d = d;
  hs.q = parse_int(q_text, spec, "qubits");
  hs.seed = seed;
  if (!butterflies_text.empty()) hs.butterflies = parse_int(butterflies_text, spec, "butterflies");
  if (raw_readout) hs.readout = Readout::kRaw;
  if (!width_text.empty()) {
    hs.min_mixer_width = parse_int(width_text, spec, "mixer width");
    FAISS_THROW_IF_NOT_FMT(
        hs.butterflies > 0 && hs.min_mixer_width >= 1 && hs.min_mixer_width <= kMaxMixerWidth,
        "index spec '%s': W%d needs a mixer (B ≥ 1) and a width in [1, %d]", spec.c_str(),
        hs.min_mixer_width, kMaxMixerWidth);
  }
  const CodeType code =
      code_type_of_bits(bits_text.empty() ? 8 : parse_int(bits_text, spec, "bits"), spec);
  FAISS_THROW_IF_NOT_FMT(hs.q >= 1 && hs.q <= d,
                         "index spec '%s': q=%d qubits must be in [1, d=%d]", spec.c_str(), hs.q,
                         d);

  if (fast_scan) return make_fast_scan(spec, hs, code, kind);

  // kind := "IVF" digits
  if (has_number_after(kind, "IVF")) {
    // A long long, so that a count past the int range is reported as out of range.
    const long long nlist = parse_long(kind.substr(3), spec, "IVF nlist");
    FAISS_THROW_IF_NOT_FMT(
        nlist >= 1 && nlist <= static_cast<long long>(IndexFidelityIVF::kMaxLists),
        "index spec '%s': IVF nlist=%lld must be in [1, %zu]", spec.c_str(), nlist,
        IndexFidelityIVF::kMaxLists);
    return std::make_unique<IndexFidelityIVF>(hs, code, size_t(nlist));
  }
  auto flat = std::make_unique<IndexFidelityFlat>(hs, code);
  if (kind == "Flat") return flat;
  // kind := "HNSW" digits
  if (has_number_after(kind, "HNSW")) {
    const int M = parse_int(kind.substr(4), spec, "HNSW M");
    FAISS_THROW_IF_NOT_FMT(M >= 2 && M <= 256, "index spec '%s': HNSW M=%d must be in [2, 256]",
                           spec.c_str(), M);
    auto hnsw = std::make_unique<faiss::IndexHNSW>(flat.release(), M);
    hnsw->own_fields = true;
    return hnsw;
  }
  FAISS_THROW_FMT("index spec '%s': unknown kind '%s'; %s", spec.c_str(), kind.c_str(), kGrammar);
}

}  // namespace bloch
