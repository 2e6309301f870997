#pragma once

// Row-by-row readers of the embedding files the command-line tools accept. A source is read
// in order, a chunk at a time, so files larger than memory stream through. Every problem is a
// VectorFileError whose message names the file and, where it is about one row, the row
// (0-based, as in NumPy).
//
//   format  file                                                   ids / payloads
//   npy     NumPy 2-D float32 or float16, C order (format v1–v3)   none
//   fvecs   per row: int32 d, then d float32 (the TEXMEX layout)   none
//   hdf5    ann-benchmarks file: a 2-D float dataset ("train")     none
//   jsonl   one JSON object a line: {"id": .., "vector": [..],      from the line
//           "payload": {..}} ("payload" optional)

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace bloch::tools {

struct VectorFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct VectorRow {
  std::string id;  ///< empty unless the file carries ids (jsonl)
  std::vector<float> values;
  std::string payload_json;  ///< empty unless the file carries payloads (jsonl)
};

class VectorSource {
 public:
  virtual ~VectorSource() = default;
  /// Values per row (for jsonl: of the first row; every row must match).
  virtual size_t dimension() const = 0;
  /// Number of rows when the format states it (npy, fvecs, hdf5).
  virtual std::optional<size_t> rows() const = 0;
  /// Appends up to `max` rows to `out`; returns how many (0 at the end).
  virtual size_t read(size_t max, std::vector<VectorRow>& out) = 0;
  const std::string& path() const { return path_; }

 protected:
  explicit VectorSource(std::string path) : path_(std::move(path)) {}
  /// "file 'P' row R: what"
  [[noreturn]] void fail_row(size_t row, const std::string& what) const;
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::string path_;
};

/// Opens `path` as `format` ("auto": by extension: .npy, .fvecs, .hdf5/.h5, .jsonl/.json).
/// `dataset` names the HDF5 dataset. Throws VectorFileError for an unreadable or malformed
/// file (wrong shape, truncated data, unknown dtype, missing dataset).
std::unique_ptr<VectorSource> open_vector_source(const std::string& path,
                                                 const std::string& format = "auto",
                                                 const std::string& dataset = "train");

/// The first non-finite value of a row, as "value 17 is NaN", or "" when all are finite.
std::string non_finite_value(const std::vector<float>& values);

}  // namespace bloch::tools
