#include "LineReader.h"

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

namespace bloch::tools {

LineReader::LineReader(const std::string& path) {
  // gzopen reads plain files unchanged, so one reader serves both.
  file_ = gzopen(path.c_str(), "rb");
  if (file_ == nullptr) throw std::runtime_error("file '" + path + "': cannot open");
  gzbuffer(file_, 1 << 17);
}

LineReader::~LineReader() {
  if (file_ != nullptr) gzclose(file_);
}

bool LineReader::next(std::string& line) {
  line.clear();
  char buffer[8192];
  bool any = false;
  while (gzgets(file_, buffer, sizeof buffer) != nullptr) {
    any = true;
    line += buffer;
    if (!line.empty() && line.back() == '\n') break;
  }
  if (!any) return false;
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  ++line_;
  return true;
}

std::vector<std::string> read_ids(const std::string& path, const std::string& id_field) {
  const bool json = path.find(".json") != std::string::npos;
  LineReader reader(path);
  std::vector<std::string> ids;
  for (std::string line; reader.next(line);) {
    const std::string where =
        "file '" + path + "' line " + std::to_string(reader.line_number() + 1);
    if (!json) {
      if (line.empty()) throw std::runtime_error(where + ": empty id");
      ids.push_back(line);
      continue;
    }
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(where + ": not valid JSON: " + e.what());
    }
    const auto id = object.is_object() ? object.find(id_field) : object.end();
    if (!object.is_object() || id == object.end()) {
      throw std::runtime_error(where + ": no \"" + id_field + "\" field");
    }
    ids.push_back(id->is_string() ? id->get<std::string>() : id->dump());
  }
  return ids;
}

}  // namespace bloch::tools
