#pragma once

// A whole 2-D embedding file (NumPy .npy float32/float16, or a dataset of an ann-benchmarks
// HDF5 file) as a float32 matrix, for the benchmark programs. The parsing is the command-line
// tools' (client/tools/VectorSource.h); this only gathers its rows.

#include <string>
#include <vector>

#include "VectorSource.h"

namespace bloch::bench {

struct NpyMatrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<float> data;  // rows × cols
  const float* row(size_t i) const { return data.data() + i * cols; }
};

/// `format` and `dataset` as tools::open_vector_source takes them ("npy"; "hdf5" with a dataset
/// name). Throws bloch::tools::VectorFileError naming the file for a malformed or truncated file.
inline NpyMatrix read_matrix(const std::string& path, const std::string& format,
                             const std::string& dataset = "train") {
  auto source = tools::open_vector_source(path, format, dataset);
  NpyMatrix out;
  out.cols = source->dimension();
  out.rows = *source->rows();
  out.data.reserve(out.rows * out.cols);
  std::vector<tools::VectorRow> chunk;
  while (source->read(4096, chunk) > 0) {
    for (const auto& row : chunk)
      out.data.insert(out.data.end(), row.values.begin(), row.values.end());
    chunk.clear();
  }
  return out;
}

inline NpyMatrix read_npy(const std::string& path) {
  return read_matrix(path, "npy");
}

}  // namespace bloch::bench
