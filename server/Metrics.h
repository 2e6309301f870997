#pragma once

// Request counters and latency histograms of blochd, rendered in the Prometheus text format
// (version 0.0.4) with the catalog's per-collection gauges for the admin `/metrics` endpoint.

#include <grpcpp/support/status.h>

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace bloch::server {

class Catalog;

class Metrics {
 public:
  /// Upper bounds (seconds) of the latency histogram buckets; +Inf is implied.
  static constexpr std::array<double, 14> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  void observe_rpc(std::string_view method, grpc::StatusCode code, double seconds);
  /// Every metric as Prometheus text; collection gauges are read from `catalog`.
  std::string render(const Catalog& catalog) const;

 private:
  struct Latency {
    std::array<uint64_t, kLatencyBuckets.size()> buckets{};  // non-cumulative counts
    uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (method, code) → count
  std::map<std::string, Latency> latency_;
};

}  // namespace bloch::server
