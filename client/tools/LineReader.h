#pragma once

// Reads a text file line by line, gunzipping transparently when it ends in ".gz" (zlib), so
// BEIR files such as corpus.jsonl.gz are read as they ship.

#include <zlib.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bloch::tools {

class LineReader {
 public:
  /// Throws std::runtime_error naming the file when it cannot be opened.
  explicit LineReader(const std::string& path);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  /// Next line without its end-of-line; false at the end of the file.
  bool next(std::string& line);
  /// 0-based number of the line last returned.
  size_t line_number() const { return line_ - 1; }

 private:
  gzFile file_ = nullptr;
  size_t line_ = 0;
};

/// Calls f(id, object) for every non-blank line of a JSONL(.gz) file, each a JSON object; id is
/// its field `id_field` (a string as it is, any other value as JSON text). Throws
/// std::runtime_error naming the file and line for bad JSON or a missing id.
void for_each_jsonl_record(const std::string& path, const std::string& id_field,
                           const std::function<void(std::string id, nlohmann::json& object)>& f);

/// The ids of a sidecar file: one per line of a text file, or field `id_field` of every line of
/// a .jsonl / .jsonl.gz file. Throws naming the file and line.
std::vector<std::string> read_ids(const std::string& path, const std::string& id_field);

}  // namespace bloch::tools
