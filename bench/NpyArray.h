#pragma once

// Reads a 2-D NumPy .npy file of float32 or float16 (little-endian, C order) into float32.
// Header format (NumPy format versions 1–3): magic "\x93NUMPY", major, minor, header length
// (u16 for v1, u32 for v2/v3), then a Python dict literal with 'descr', 'fortran_order' and
// 'shape'. Written here because no Debian C++ library reads .npy; it is ~80 lines.

#include <cstdint>
#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace bloch::bench {

struct NpyMatrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> data;  // rows × cols
  const float* row(size_t i) const { return data.data() + i * cols; }
};

// IEEE 754 binary16 → binary32.
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // normal: rebias 15 → 127
  } else if (mant == 0) {
    bits = sign;  // ±0
  } else {
    // Subnormal half: shift the mantissa up until its leading 1 is implicit.
    exp = 113;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline NpyMatrix read_npy(const std::string& path) {
  auto fail = [&](const std::string& why) { throw std::runtime_error("'" + path + "': " + why); };
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) fail("not a .npy file");
  uint32_t header_len = 0;
  if (magic[6] == 1) {
    uint16_t h;
    in.read(reinterpret_cast<char*>(&h), 2);
    header_len = h;
  } else {
    in.read(reinterpret_cast<char*>(&header_len), 4);
  }
  std::string header(header_len, '\0');
  if (!in.read(header.data(), header_len)) fail("truncated header");

  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr':\s*'([<>|=]?)([a-z]\d+)')")))
    fail("header has no 'descr'");
  const std::string type = m[2];
  if (m[1] == ">") fail("big-endian data is not supported");
  if (type != "f4" && type != "f2") fail("dtype '" + type + "' is not float32 or float16");
  if (std::regex_search(header, std::regex(R"('fortran_order':\s*True)")))
    fail("Fortran-order arrays are not supported");
  if (!std::regex_search(header, m, std::regex(R"('shape':\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))")))
    fail("shape is not 2-D");

  NpyMatrix out;
  out.rows = std::stoull(m[1]);
  out.cols = std::stoull(m[2]);
  const size_t count = out.rows * out.cols;
  out.data.resize(count);
  if (type == "f4") {
    if (!in.read(reinterpret_cast<char*>(out.data.data()), std::streamsize(count * 4)))
      fail("truncated data: expected " + std::to_string(count) + " float32 values");
  } else {
    std::vector<uint16_t> halves(count);
    if (!in.read(reinterpret_cast<char*>(halves.data()), std::streamsize(count * 2)))
      fail("truncated data: expected " + std::to_string(count) + " float16 values");
    for (size_t i = 0; i < count; ++i) out.data[i] = half_to_float(halves[i]);
  }
  return out;
}

}  // namespace bloch::bench
