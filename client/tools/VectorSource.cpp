#include "VectorSource.h"

#include <hdf5.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

namespace bloch::tools {

void VectorSource::fail_row(size_t row, const std::string& what) const {
  throw VectorFileError("file '" + path_ + "' row " + std::to_string(row) + ": " + what);
}

void VectorSource::fail(const std::string& what) const {
  throw VectorFileError("file '" + path_ + "': " + what);
}

std::string non_finite_value(const std::vector<float>& values) {
  for (size_t j = 0; j < values.size(); ++j) {
    if (!std::isfinite(values[j])) {
      return "value " + std::to_string(j) + " is " + (std::isnan(values[j]) ? "NaN" : "infinite");
    }
  }
  return "";
}

namespace {

/// IEEE 754 binary16 → binary32 (NumPy's float16).
float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf / NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // rebias 15 → 127
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal: shift the mantissa up until its leading 1 becomes implicit.
    exponent = 113;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// -- .npy ---------------------------------------------------------------------------------------
// Magic "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2/v3), then a Python
// dict literal with 'descr', 'fortran_order' and 'shape'. No Debian C++ library reads it.
class NpySource final : public VectorSource {
 public:
  explicit NpySource(const std::string& path) : VectorSource(path), in_(path, std::ios::binary) {
    if (!in_) fail("cannot open");
    char magic[8];
    if (!in_.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0) fail("not a .npy file");
    uint32_t header_length = 0;
    if (magic[6] == 1) {
      uint16_t h = 0;
      in_.read(reinterpret_cast<char*>(&h), 2);
      header_length = h;
    } else {
      in_.read(reinterpret_cast<char*>(&header_length), 4);
    }
    std::string header(header_length, '\0');
    if (!in_.read(header.data(), header_length)) fail("truncated header");
    std::smatch m;
    if (!std::regex_search(header, m, std::regex(R"('descr':\s*'([<>|=]?)([a-z]\d+)')"))) {
      fail("header has no 'descr'");
    }
    const std::string type = m[2];
    if (m[1] == ">") fail("big-endian data is not supported");
    if (type != "f4" && type != "f2") fail("dtype '" + type + "' is not float32 or float16");
    half_ = type == "f2";
    if (std::regex_search(header, std::regex(R"('fortran_order':\s*True)"))) {
      fail("Fortran-order arrays are not supported");
    }
    if (!std::regex_search(header, m, std::regex(R"('shape':\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))"))) {
      fail("shape is not 2-D (rows, dimension)");
    }
    rows_ = std::stoull(m[1]);
    dimension_ = std::stoull(m[2]);
    if (dimension_ == 0) fail("dimension is 0");
    const uint64_t data_bytes = std::filesystem::file_size(path) - uint64_t(in_.tellg());
    const uint64_t row_bytes = dimension_ * (half_ ? 2 : 4);
    if (data_bytes < rows_ * row_bytes) {
      fail("truncated: the header says " + std::to_string(rows_) + " rows of " +
           std::to_string(dimension_) + " but the data holds " +
           std::to_string(data_bytes / row_bytes) + " whole rows");
    }
  }
  size_t dimension() const override { return dimension_; }
  std::optional<size_t> rows() const override { return rows_; }
  size_t read(size_t max, std::vector<VectorRow>& out) override {
    const size_t n = std::min(max, rows_ - next_);
    std::vector<uint16_t> halves(half_ ? dimension_ : 0);
    for (size_t i = 0; i < n; ++i, ++next_) {
      VectorRow row;
      row.values.resize(dimension_);
      const bool ok =
          half_ ? bool(in_.read(reinterpret_cast<char*>(halves.data()), long(2 * dimension_)))
                : bool(in_.read(reinterpret_cast<char*>(row.values.data()), long(4 * dimension_)));
      if (!ok) fail_row(next_, "truncated");
      if (half_) {
        for (size_t j = 0; j < dimension_; ++j) row.values[j] = half_to_float(halves[j]);
      }
      out.push_back(std::move(row));
    }
    return n;
  }

 private:
  std::ifstream in_;
  size_t rows_ = 0, dimension_ = 0, next_ = 0;
  bool half_ = false;
};

// -- .fvecs -------------------------------------------------------------------------------------
class FvecsSource final : public VectorSource {
 public:
  explicit FvecsSource(const std::string& path) : VectorSource(path), in_(path, std::ios::binary) {
    if (!in_) fail("cannot open");
    int32_t d = 0;
    if (!in_.read(reinterpret_cast<char*>(&d), 4)) fail("empty file");
    if (d <= 0 || d > (1 << 20)) fail("row 0 declares dimension " + std::to_string(d));
    dimension_ = size_t(d);
    in_.seekg(0);
    const uint64_t bytes = std::filesystem::file_size(path), row_bytes = 4 + 4 * dimension_;
    if (bytes % row_bytes != 0) {
      fail("truncated or mixed dimensions: " + std::to_string(bytes) +
           " bytes is not a whole number of " + std::to_string(row_bytes) + "-byte rows");
    }
    rows_ = bytes / row_bytes;
  }
  size_t dimension() const override { return dimension_; }
  std::optional<size_t> rows() const override { return rows_; }
  size_t read(size_t max, std::vector<VectorRow>& out) override {
    const size_t n = std::min(max, rows_ - next_);
    for (size_t i = 0; i < n; ++i, ++next_) {
      int32_t d = 0;
      VectorRow row;
      row.values.resize(dimension_);
      if (!in_.read(reinterpret_cast<char*>(&d), 4)) fail_row(next_, "truncated");
      if (size_t(d) != dimension_) {
        fail_row(next_, "declares dimension " + std::to_string(d) + ", row 0 declared " +
                            std::to_string(dimension_));
      }
      if (!in_.read(reinterpret_cast<char*>(row.values.data()), long(4 * dimension_))) {
        fail_row(next_, "truncated");
      }
      out.push_back(std::move(row));
    }
    return n;
  }

 private:
  std::ifstream in_;
  size_t rows_ = 0, dimension_ = 0, next_ = 0;
};

// -- HDF5 (ann-benchmarks) ----------------------------------------------------------------------
class Hdf5Source final : public VectorSource {
 public:
  Hdf5Source(const std::string& path, const std::string& dataset) : VectorSource(path) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // errors come back as codes, not stderr dumps
    file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file_ < 0) fail("cannot open as HDF5");
    dataset_ = H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT);
    if (dataset_ < 0) fail("has no dataset '" + dataset + "'");
    const hid_t space = H5Dget_space(dataset_);
    hsize_t dims[2] = {0, 0};
    const int rank = H5Sget_simple_extent_ndims(space);
    if (rank == 2) H5Sget_simple_extent_dims(space, dims, nullptr);
    H5Sclose(space);
    if (rank != 2) fail("dataset '" + dataset + "' is not 2-D");
    const hid_t type = H5Dget_type(dataset_);
    const bool is_float = H5Tget_class(type) == H5T_FLOAT;
    H5Tclose(type);
    if (!is_float) fail("dataset '" + dataset + "' is not floating point");
    rows_ = dims[0];
    dimension_ = dims[1];
  }
  ~Hdf5Source() override {
    if (dataset_ >= 0) H5Dclose(dataset_);
    if (file_ >= 0) H5Fclose(file_);
  }
  size_t dimension() const override { return dimension_; }
  std::optional<size_t> rows() const override { return rows_; }
  size_t read(size_t max, std::vector<VectorRow>& out) override {
    const size_t n = std::min(max, rows_ - next_);
    if (n == 0) return 0;
    std::vector<float> block(n * dimension_);
    const hid_t file_space = H5Dget_space(dataset_);
    const hsize_t start[2] = {next_, 0}, count[2] = {n, dimension_};
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, nullptr, count, nullptr);
    const hid_t memory_space = H5Screate_simple(2, count, nullptr);
    const herr_t status =
        H5Dread(dataset_, H5T_NATIVE_FLOAT, memory_space, file_space, H5P_DEFAULT, block.data());
    H5Sclose(memory_space);
    H5Sclose(file_space);
    if (status < 0) fail_row(next_, "unreadable (rows " + std::to_string(next_) + "+)");
    for (size_t i = 0; i < n; ++i) {
      out.push_back({"",
                     std::vector<float>(block.begin() + long(i * dimension_),
                                        block.begin() + long((i + 1) * dimension_)),
                     ""});
    }
    next_ += n;
    return n;
  }

 private:
  hid_t file_ = -1, dataset_ = -1;
  size_t rows_ = 0, dimension_ = 0, next_ = 0;
};

// -- JSON lines ---------------------------------------------------------------------------------
class JsonlSource final : public VectorSource {
 public:
  explicit JsonlSource(const std::string& path) : VectorSource(path), in_(path) {
    if (!in_) fail("cannot open");
    // The dimension is that of the first row.
    std::vector<VectorRow> first;
    if (read(1, first) == 0) fail("no rows");
    dimension_ = first[0].values.size();
    pending_ = std::move(first[0]);
  }
  size_t dimension() const override { return dimension_; }
  std::optional<size_t> rows() const override { return std::nullopt; }
  size_t read(size_t max, std::vector<VectorRow>& out) override {
    size_t n = 0;
    if (pending_ && n < max) {
      out.push_back(std::move(*pending_));
      pending_.reset();
      ++n;
    }
    std::string line;
    while (n < max && std::getline(in_, line)) {
      const size_t row = line_++;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json object;
      try {
        object = nlohmann::json::parse(line);
      } catch (const nlohmann::json::parse_error& e) {
        fail_row(row, std::string("not valid JSON: ") + e.what());
      }
      VectorRow parsed;
      if (!object.is_object()) fail_row(row, "is not a JSON object");
      const auto id = object.find("id");
      if (id == object.end()) fail_row(row, "has no \"id\"");
      parsed.id = id->is_string() ? id->get<std::string>() : id->dump();
      const auto vector = object.find("vector");
      if (vector == object.end() || !vector->is_array()) {
        fail_row(row, "has no \"vector\" array");
      }
      for (const auto& value : *vector) {
        if (!value.is_number()) fail_row(row, "\"vector\" holds a non-number");
        parsed.values.push_back(value.get<float>());
      }
      if (dimension_ != 0 && parsed.values.size() != dimension_) {
        fail_row(row, "\"vector\" has " + std::to_string(parsed.values.size()) +
                          " values, the first row has " + std::to_string(dimension_));
      }
      if (const auto payload = object.find("payload"); payload != object.end()) {
        parsed.payload_json = payload->dump();
      }
      out.push_back(std::move(parsed));
      ++n;
    }
    return n;
  }

 private:
  std::ifstream in_;
  size_t dimension_ = 0, line_ = 0;
  std::optional<VectorRow> pending_;
};

std::string extension_of(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

std::unique_ptr<VectorSource> open_vector_source(const std::string& path, const std::string& format,
                                                 const std::string& dataset) {
  if (!std::filesystem::exists(path)) throw VectorFileError("file '" + path + "' does not exist");
  std::string kind = format;
  if (kind == "auto") {
    const std::string ext = extension_of(path);
    if (ext == ".npy") kind = "npy";
    if (ext == ".fvecs") kind = "fvecs";
    if (ext == ".hdf5" || ext == ".h5") kind = "hdf5";
    if (ext == ".jsonl" || ext == ".json" || ext == ".ndjson") kind = "jsonl";
    if (kind == "auto") {
      throw VectorFileError("file '" + path + "': cannot tell the format from '" + ext +
                            "'; pass --format npy|fvecs|hdf5|jsonl");
    }
  }
  if (kind == "npy") return std::make_unique<NpySource>(path);
  if (kind == "fvecs") return std::make_unique<FvecsSource>(path);
  if (kind == "hdf5") return std::make_unique<Hdf5Source>(path, dataset);
  if (kind == "jsonl") return std::make_unique<JsonlSource>(path);
  throw VectorFileError("format '" + format + "' is not npy, fvecs, hdf5 or jsonl");
}

}  // namespace bloch::tools
