#include "server/Metrics.h"

#include <sstream>

#include "server/Catalog.h"

namespace bloch::server {

namespace {

const char* code_name(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kNames[code] : "UNKNOWN";
}

/// Prometheus label values escape backslash, double quote and newline.
std::string escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

void Metrics::observe_rpc(std::string_view method, grpc::StatusCode code, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{std::string(method), int(code)}];
  Latency& latency = latency_[std::string(method)];
  size_t bucket = 0;
  while (bucket < kLatencyBuckets.size() && seconds > kLatencyBuckets[bucket]) ++bucket;
  if (bucket < kLatencyBuckets.size()) ++latency.buckets[bucket];
  ++latency.count;
  latency.sum += seconds;
}

std::string Metrics::render(const Catalog& catalog) const {
  std::ostringstream out;
  {
    std::lock_guard lock(mutex_);
    out << "# HELP bloch_rpc_requests_total gRPC requests handled, by method and status code.\n"
        << "# TYPE bloch_rpc_requests_total counter\n";
    for (const auto& [key, count] : requests_) {
      out << "bloch_rpc_requests_total{method=\"" << escape(key.first) << "\",code=\""
          << code_name(key.second) << "\"} " << count << "\n";
    }
    out << "# HELP bloch_rpc_latency_seconds gRPC handling time, by method.\n"
        << "# TYPE bloch_rpc_latency_seconds histogram\n";
    for (const auto& [method, latency] : latency_) {
      uint64_t cumulative = 0;
      for (size_t b = 0; b < kLatencyBuckets.size(); ++b) {
        cumulative += latency.buckets[b];
        out << "bloch_rpc_latency_seconds_bucket{method=\"" << escape(method) << "\",le=\""
            << kLatencyBuckets[b] << "\"} " << cumulative << "\n";
      }
      out << "bloch_rpc_latency_seconds_bucket{method=\"" << escape(method) << "\",le=\"+Inf\"} "
          << latency.count << "\n"
          << "bloch_rpc_latency_seconds_sum{method=\"" << escape(method) << "\"} " << latency.sum
          << "\n"
          << "bloch_rpc_latency_seconds_count{method=\"" << escape(method) << "\"} "
          << latency.count << "\n";
    }
  }
  const auto collections = catalog.list();
  out << "# HELP bloch_collections Collections served.\n# TYPE bloch_collections gauge\n"
      << "bloch_collections " << collections.size() << "\n";
  struct Gauge {
    const char* name;
    const char* help;
    uint64_t (*value)(const v1::CollectionInfo&);
  };
  static constexpr Gauge kGauges[] = {
      {"bloch_collection_documents", "Live documents stored, by collection.",
       [](const v1::CollectionInfo& i) { return i.documents(); }},
      {"bloch_collection_index_entries", "In-memory index entries (live and not yet compacted).",
       [](const v1::CollectionInfo& i) { return i.index_entries(); }},
      {"bloch_collection_index_bytes", "Bytes of codes and graph links held in memory.",
       [](const v1::CollectionInfo& i) { return i.index_bytes(); }},
  };
  std::vector<v1::CollectionInfo> infos(collections.size());
  for (size_t i = 0; i < collections.size(); ++i) collections[i]->describe(&infos[i]);
  for (const Gauge& gauge : kGauges) {
    out << "# HELP " << gauge.name << " " << gauge.help << "\n# TYPE " << gauge.name << " gauge\n";
    for (const auto& info : infos) {
      out << gauge.name << "{collection=\"" << escape(info.name()) << "\"} " << gauge.value(info)
          << "\n";
    }
  }
  return out.str();
}

}  // namespace bloch::server
