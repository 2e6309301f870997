// bloch: the command-line client of blochd.
//
//   bloch search docs --vectors queries.npy -k 5            # table: rank, id, fidelity, payload
//   bloch search docs --like d000042 --json                 # by a stored document's vector
//   echo '[0.1, 0.2, ...]' | bloch search docs --vectors -  # JSON arrays on stdin
//   bloch collections | describe NAME | get NAME ID.. | delete NAME ID.. | health
//   bloch create NAME --dimension 384 --spec QC128,HNSW32 | drop NAME | train NAME | compact NAME
//
// --json prints JSON lines (one per query / collection / document) for scripts.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ConnectionFlags.h"
#include "StatusCheck.h"
#include "VectorSource.h"

namespace bloch::tools {
namespace {

using nlohmann::json;

json payload_json(const std::string& text) {
  if (text.empty()) return nullptr;
  return json::parse(text, nullptr, false);
}

json info_json(const v1::CollectionInfo& info) {
  static const char* kStates[] = {"unspecified", "untrained", "training", "trained"};
  return {{"name", info.name()},
          {"dimension", info.dimension()},
          {"index_spec", info.index_spec()},
          {"qubits", info.qubits()},
          {"code_bits", info.code_bits()},
          {"code_bytes", info.code_bytes()},
          {"head_state", kStates[std::clamp(int(info.head_state()), 0, 3)]},
          {"head", info.head_description()},
          {"head_parameters", info.head_parameters()},
          {"documents", info.documents()},
          {"index_entries", info.index_entries()},
          {"index_bytes", info.index_bytes()},
          {"keeps_vectors", info.keeps_vectors()}};
}

/// Query vectors: a file of any supported format, or "-" for JSON on stdin (one array, or one
/// {"vector": [...]} object, per line).
std::vector<std::vector<float>> read_queries(const std::string& path, const std::string& format) {
  std::vector<std::vector<float>> queries;
  if (path != "-") {
    auto source = open_vector_source(path, format);
    std::vector<VectorRow> rows;
    while (source->read(1024, rows) > 0) {
    }
    for (auto& row : rows) queries.push_back(std::move(row.values));
    return queries;
  }
  std::string line;
  for (size_t n = 0; std::getline(std::cin, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const json value = json::parse(line, nullptr, false);
    const json& vector = value.is_object() && value.contains("vector") ? value["vector"] : value;
    if (!vector.is_array()) {
      throw ToolError("stdin line " + std::to_string(n + 1) +
                      ": expected a JSON array of numbers or {\"vector\": [...]}");
    }
    std::vector<float> values;
    for (const auto& x : vector) {
      if (!x.is_number()) throw ToolError("stdin line " + std::to_string(n + 1) + ": non-number");
      values.push_back(x.get<float>());
    }
    queries.push_back(std::move(values));
  }
  return queries;
}

/// A payload's top-level fields as "key=value" text, cut to `width` characters.
std::string payload_summary(const std::string& text, size_t width) {
  const json payload = payload_json(text);
  std::string out;
  if (payload.is_object()) {
    for (const auto& [key, value] : payload.items()) {
      std::string shown = value.is_string() ? value.get<std::string>() : value.dump();
      for (char& c : shown) c = (c == '\n' || c == '\t') ? ' ' : c;
      out += (out.empty() ? "" : "  ") + key + "=" + shown;
    }
  } else if (!payload.is_null()) {
    out = payload.dump();
  }
  if (out.size() > width) out = out.substr(0, width - 3) + "...";
  return out;
}

struct SearchFlags {
  std::string collection;
  std::string vectors;
  std::string format = "auto";
  std::string like;
  uint32_t k = 10;
  uint32_t ef = 0;
  uint32_t nprobe = 0;
  uint32_t rerank_factor = 0;
  bool no_payload = false;
};

int search(Client& client, const SearchFlags& flags, bool as_json) {
  std::vector<std::vector<float>> queries;
  if (!flags.like.empty()) {
    v1::GetResponse found;
    check(client.get(flags.collection, {flags.like}, true, &found), "get '" + flags.like + "'");
    if (found.documents_size() == 0) {
      throw ToolError("collection '" + flags.collection + "' has no document '" + flags.like + "'");
    }
    const auto& v = found.documents(0).vector();
    queries.emplace_back(v.begin(), v.end());
  }
  if (!flags.vectors.empty()) {
    auto more = read_queries(flags.vectors, flags.format);
    queries.insert(queries.end(), more.begin(), more.end());
  }
  if (queries.empty()) throw ToolError("no query: pass --vectors FILE|- or --like ID");
  v1::SearchRequest request;
  request.set_collection(flags.collection);
  request.set_k(flags.k);
  request.set_ef(flags.ef);
  request.set_nprobe(flags.nprobe);
  request.set_rerank_factor(flags.rerank_factor);
  request.set_with_payload(!flags.no_payload);
  for (const auto& q : queries) request.add_queries()->mutable_values()->Add(q.begin(), q.end());
  v1::SearchResponse response;
  check(client.search(request, &response), "search");
  for (int qi = 0; qi < response.results_size(); ++qi) {
    const auto& hits = response.results(qi).hits();
    if (as_json) {
      json out = {{"query", qi}, {"hits", json::array()}};
      for (const auto& hit : hits) {
        out["hits"].push_back({{"id", hit.id()},
                               {"fidelity", hit.fidelity()},
                               {"log_fidelity", hit.log_fidelity()},
                               {"payload", payload_json(hit.payload_json())}});
      }
      std::cout << out.dump() << "\n";
      continue;
    }
    std::printf("query %d\n  %4s  %-24s %10s %12s  %s\n", qi, "rank", "id", "fidelity", "log-fid",
                "payload");
    for (int j = 0; j < hits.size(); ++j) {
      std::printf("  %4d  %-24s %10.4g %12.4f  %s\n", j + 1, hits[j].id().c_str(),
                  hits[j].fidelity(), hits[j].log_fidelity(),
                  payload_summary(hits[j].payload_json(), 80).c_str());
    }
  }
  return 0;
}

}  // namespace
}  // namespace bloch::tools

int main(int argc, char** argv) {
  using namespace bloch;
  using namespace bloch::tools;
  CLI::App app{"bloch: command-line client of the bloch vector search service"};
  app.require_subcommand(1);
  ConnectionFlags connection;
  add_connection_flags(app, connection);
  bool as_json = false;
  app.add_flag("--json", as_json, "JSON lines output, for scripts");

  SearchFlags search_flags;
  auto* search_cmd = app.add_subcommand("search", "top-k documents for query vectors");
  search_cmd->add_option("collection", search_flags.collection)->required();
  search_cmd->add_option("--vectors", search_flags.vectors,
                         "query file (.npy, .fvecs, .hdf5, .jsonl) or - for JSON arrays on stdin");
  search_cmd->add_option("--format", search_flags.format,
                         "format of --vectors (default: by "
                         "extension)");
  search_cmd->add_option("--like", search_flags.like, "search with a stored document's vector");
  search_cmd->add_option("-k", search_flags.k, "hits per query")->capture_default_str();
  search_cmd->add_option("--ef", search_flags.ef, "HNSW search depth (0: index default)");
  search_cmd->add_option("--nprobe", search_flags.nprobe, "IVF lists to probe (0: default)");
  search_cmd->add_option("--rerank-factor", search_flags.rerank_factor,
                         "Fast-scan kinds: candidates re-ranked per hit (0: default)");
  search_cmd->add_flag("--no-payload", search_flags.no_payload, "leave payloads out");
  search_cmd->add_flag("--json", as_json, "JSON lines output");

  auto* collections_cmd = app.add_subcommand("collections", "list collections");
  collections_cmd->add_flag("--json", as_json, "JSON lines output");
  std::string name;
  auto* describe_cmd = app.add_subcommand("describe", "one collection in detail");
  describe_cmd->add_option("collection", name)->required();
  std::vector<std::string> ids;
  bool with_vectors = false;
  auto* get_cmd = app.add_subcommand("get", "documents by id");
  get_cmd->add_option("collection", name)->required();
  get_cmd->add_option("ids", ids)->required();
  get_cmd->add_flag("--vectors", with_vectors, "include raw vectors");
  get_cmd->add_flag("--json", as_json, "JSON lines output");
  auto* delete_cmd = app.add_subcommand("delete", "delete documents by id");
  delete_cmd->add_option("collection", name)->required();
  delete_cmd->add_option("ids", ids)->required();
  auto* health_cmd = app.add_subcommand("health", "is the server serving? (exit 0 if so)");

  v1::CreateCollectionRequest create_request;
  uint32_t dimension = 0, train_on_first_n = 0;
  std::string spec, head_file;
  bool discard_vectors = false;
  auto* create_cmd = app.add_subcommand("create", "create a collection");
  create_cmd->add_option("collection", name)->required();
  create_cmd->add_option("--dimension", dimension, "raw embedding dimension")->required();
  create_cmd->add_option("--spec", spec, "index factory string, e.g. QC128,Flat or QC128,HNSW32");
  create_cmd->add_option("--train-on-first-n", train_on_first_n,
                         "train the head by itself once N documents are stored");
  create_cmd->add_option("--head-file", head_file, "a trained head file to use");
  create_cmd->add_flag("--discard-vectors", discard_vectors, "keep codes only");
  auto* drop_cmd = app.add_subcommand("drop", "drop a collection and all its documents");
  drop_cmd->add_option("collection", name)->required();
  uint32_t sample = 0, epochs = 0;
  auto* compact_cmd = app.add_subcommand(
      "compact", "rebuild the index with the current head, dropping replaced and deleted entries");
  compact_cmd->add_option("collection", name)->required();
  auto* train_cmd = app.add_subcommand("train", "train the head on stored vectors (unsupervised)");
  train_cmd->add_option("collection", name)->required();
  train_cmd->add_option("--sample", sample, "rows to train on (0: server default)");
  train_cmd->add_option("--epochs", epochs, "epochs (0: server default)");

  CLI11_PARSE(app, argc, argv);
  try {
    Client client(client_options(connection));
    if (search_cmd->parsed()) return search(client, search_flags, as_json);
    if (collections_cmd->parsed() || describe_cmd->parsed()) {
      std::vector<v1::CollectionInfo> infos(1);
      if (describe_cmd->parsed()) {
        check(client.describe_collection(name, &infos[0]), "describe");
      } else {
        check(client.list_collections(&infos), "list collections");
      }
      for (const auto& info : infos) {
        if (as_json || describe_cmd->parsed()) {
          std::cout << (describe_cmd->parsed() && !as_json ? info_json(info).dump(2)
                                                           : info_json(info).dump())
                    << "\n";
        } else {
          std::printf("%-24s %10s docs  %-16s %s\n", info.name().c_str(),
                      std::to_string(info.documents()).c_str(), info.index_spec().c_str(),
                      info_json(info)["head_state"].get<std::string>().c_str());
        }
      }
      return 0;
    }
    if (get_cmd->parsed()) {
      v1::GetResponse found;
      check(client.get(name, ids, with_vectors, &found), "get");
      for (const auto& doc : found.documents()) {
        nlohmann::json out = {{"id", doc.id()}, {"payload", payload_json(doc.payload_json())}};
        if (with_vectors)
          out["vector"] = std::vector<float>(doc.vector().begin(), doc.vector().end());
        std::cout << out.dump(as_json ? -1 : 2) << "\n";
      }
      for (const auto& id : found.missing_ids())
        std::fprintf(stderr, "not found: %s\n", id.c_str());
      return found.missing_ids_size() == 0 ? 0 : 3;
    }
    if (delete_cmd->parsed()) {
      v1::DeleteResponse deleted;
      check(client.remove(name, ids, &deleted), "delete");
      std::printf("deleted %llu, not found %llu\n", (unsigned long long)deleted.deleted(),
                  (unsigned long long)deleted.not_found());
      return 0;
    }
    if (health_cmd->parsed()) {
      bool serving = false;
      const grpc::Status s = client.health(&serving);
      std::printf("%s\n", serving ? "SERVING" : ("NOT SERVING: " + s.error_message()).c_str());
      return serving ? 0 : 1;
    }
    if (create_cmd->parsed()) {
      create_request.set_name(name);
      create_request.set_dimension(dimension);
      create_request.set_index_spec(spec);
      create_request.set_discard_vectors(discard_vectors);
      if (train_on_first_n > 0) create_request.set_train_on_first_n(train_on_first_n);
      if (!head_file.empty()) {
        std::ifstream in(head_file, std::ios::binary);
        if (!in) throw ToolError("head file '" + head_file + "' cannot be read");
        create_request.set_head_file(std::string(std::istreambuf_iterator<char>(in), {}));
      }
      v1::CollectionInfo info;
      check(client.create_collection(create_request, &info), "create");
      std::cout << info_json(info).dump(as_json ? -1 : 2) << "\n";
      return 0;
    }
    if (drop_cmd->parsed()) {
      check(client.drop_collection(name), "drop");
      std::printf("dropped %s\n", name.c_str());
      return 0;
    }
    if (compact_cmd->parsed()) {
      v1::TrainHeadRequest request;
      request.set_collection(name);
      request.mutable_compact();
      check(client.train_head(request, nullptr), "compact");
      v1::CollectionInfo info;
      check(client.describe_collection(name, &info), "describe");
      std::printf("compacted %s: %llu documents, %llu index entries\n", name.c_str(),
                  (unsigned long long)info.documents(), (unsigned long long)info.index_entries());
      return 0;
    }
    if (train_cmd->parsed()) {
      v1::TrainHeadRequest request;
      request.set_collection(name);
      request.mutable_unsupervised()->set_sample_size(sample);
      request.set_max_epochs(epochs);
      check(client.train_head(request,
                              [](const v1::TrainProgress& p) {
                                if (p.stage() == v1::TrainProgress::TRAINING) {
                                  std::fprintf(stderr, "epoch %u/%u  loss %.4f\n", p.epoch(),
                                               p.max_epochs(), p.train_loss());
                                }
                              }),
            "train");
      std::printf("trained %s\n", name.c_str());
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bloch: %s\n", e.what());
    return 1;
  }
  return 0;
}
