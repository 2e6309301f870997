#pragma once

// A retrieval set in BEIR layout with precomputed embeddings:
//   corpus ids   : a JSONL file (optionally .gz), one object per line with "_id"; line i is
//                  row i of the corpus embeddings (.npy)
//   query ids    : the same for a query split and its embeddings
//   qrels        : TSV "query-id<TAB>corpus-id<TAB>score" with a header line; score > 0 = relevant
// Queries without a relevant document are dropped (they cannot score), and said so.

#include <zlib.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "NpyArray.h"

namespace bloch::bench {

/// Lines of a text file, transparently gunzipped (zlib reads plain files as they are).
inline std::vector<std::string> read_lines(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("'" + path + "': cannot open");
  std::vector<std::string> lines;
  std::string line;
  char buf[1 << 16];
  while (gzgets(f, buf, sizeof(buf))) {
    line += buf;
    if (!line.empty() && line.back() == '\n') {
      line.pop_back();
      lines.push_back(std::move(line));
      line.clear();
    }
  }
  if (!line.empty()) lines.push_back(std::move(line));
  gzclose(f);
  return lines;
}

/// The "_id" of every line of a JSONL file.
inline std::vector<std::string> read_jsonl_ids(const std::string& path) {
  std::vector<std::string> ids;
  const auto lines = read_lines(path);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    try {
      ids.push_back(nlohmann::json::parse(lines[i]).at("_id").get<std::string>());
    } catch (const std::exception& e) {
      throw std::runtime_error("'" + path + "' line " + std::to_string(i + 1) + ": " + e.what());
    }
  }
  return ids;
}

struct QuerySplit {
  NpyMatrix embeddings;                    // rows = queries kept, in file order
  std::vector<std::string> ids;            // id of each kept row
  std::vector<std::vector<int>> relevant;  // corpus rows relevant to each kept row
  size_t dropped = 0;                      // queries with no relevant corpus row
};

struct BeirSet {
  NpyMatrix corpus;
  std::vector<std::string> corpus_ids;
  std::unordered_map<std::string, int> corpus_row;
};

inline BeirSet load_corpus(const std::string& ids_path, const std::string& npy_path) {
  BeirSet set;
  set.corpus = read_npy(npy_path);
  set.corpus_ids = read_jsonl_ids(ids_path);
  if (set.corpus_ids.size() != set.corpus.rows)
    throw std::runtime_error("'" + ids_path + "' has " + std::to_string(set.corpus_ids.size()) +
                             " ids but '" + npy_path + "' has " + std::to_string(set.corpus.rows) +
                             " rows");
  for (size_t i = 0; i < set.corpus_ids.size(); ++i) set.corpus_row[set.corpus_ids[i]] = int(i);
  return set;
}

inline QuerySplit load_queries(const BeirSet& set, const std::string& ids_path,
                               const std::string& npy_path, const std::string& qrels_path) {
  const NpyMatrix all = read_npy(npy_path);
  const auto ids = read_jsonl_ids(ids_path);
  if (ids.size() != all.rows)
    throw std::runtime_error("'" + ids_path + "' has " + std::to_string(ids.size()) + " ids but '" +
                             npy_path + "' has " + std::to_string(all.rows) + " rows");
  if (all.cols != set.corpus.cols)
    throw std::runtime_error("'" + npy_path + "' has dimension " + std::to_string(all.cols) +
                             ", the corpus " + std::to_string(set.corpus.cols));
  std::unordered_map<std::string, std::vector<int>> rel;
  const auto lines = read_lines(qrels_path);
  for (size_t i = 1; i < lines.size(); ++i) {  // line 0 is the header
    const auto t1 = lines[i].find('\t'), t2 = lines[i].find('\t', t1 + 1);
    if (t1 == std::string::npos || t2 == std::string::npos)
      throw std::runtime_error("'" + qrels_path + "' line " + std::to_string(i + 1) +
                               ": expected query-id<TAB>corpus-id<TAB>score");
    if (std::stod(lines[i].substr(t2 + 1)) <= 0) continue;
    const auto it = set.corpus_row.find(lines[i].substr(t1 + 1, t2 - t1 - 1));
    if (it != set.corpus_row.end()) rel[lines[i].substr(0, t1)].push_back(it->second);
  }
  QuerySplit split;
  split.embeddings.cols = all.cols;
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto it = rel.find(ids[i]);
    if (it == rel.end()) {
      ++split.dropped;
      continue;
    }
    split.ids.push_back(ids[i]);
    split.relevant.push_back(it->second);
    split.embeddings.data.insert(split.embeddings.data.end(), all.row(i), all.row(i) + all.cols);
  }
  split.embeddings.rows = split.ids.size();
  return split;
}

}  // namespace bloch::bench
