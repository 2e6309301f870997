#include "LineReader.h"

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

void for_each_jsonl_record(const std::string& path, const std::string& id_field,
                           const std::function<void(std::string id, nlohmann::json& object)>& f) {
  LineReader reader(path);
  for (std::string line; reader.next(line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where =
        "file '" + path + "' line " + std::to_string(reader.line_number() + 1);
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(where + ": not valid JSON: " + e.what());
    }
    const auto id = object.is_object() ? object.find(id_field) : object.end();
    if (id == object.end()) throw std::runtime_error(where + ": no \"" + id_field + "\" field");
    f(id->is_string() ? id->get<std::string>() : id->dump(), object);
  }
}

std::vector<std::string> read_ids(const std::string& path, const std::string& id_field) {
  std::vector<std::string> ids;
  if (path.find(".json") != std::string::npos) {
    for_each_jsonl_record(path, id_field,
                          [&](std::string id, nlohmann::json&) { ids.push_back(std::move(id)); });
    return ids;
  }
  LineReader reader(path);
  for (std::string line; reader.next(line);) {
    if (line.empty()) {
      throw std::runtime_error("file '" + path + "' line " +
                               std::to_string(reader.line_number() + 1) + ": empty id");
    }
    ids.push_back(line);
  }
  return ids;
}

}  // namespace bloch::tools
