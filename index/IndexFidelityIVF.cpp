#include "index/IndexFidelityIVF.h"

#include <faiss/Clustering.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/utils/Heap.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "index/BlochVectors.h"
#include "index/FidelityHeadModel.h"
#include "index/FidelityIVFScanner.h"

namespace bloch {

namespace {

using idx_t = faiss::Index::idx_t;
using TopK = faiss::CMin<float, idx_t>;  // min-heap of the k largest log-fidelities

// Raw vectors run through the head this many at a time: bounds the temporary angle, Bloch and
// code buffers of add() and sa_encode() whatever n is.
constexpr idx_t kBatch = 4096;

// Calls f(first, count, angles) for consecutive batches of the n raw vectors x (n × head.dim()).
template <typename F>
void for_each_angle_batch(const FidelityHead& head, idx_t n, const float* x, F&& f) {
  std::vector<float> angles(size_t(std::min(n, kBatch)) * size_t(head.qubits()));
  for (idx_t i = 0; i < n; i += kBatch) {
    const idx_t nb = std::min(kBatch, n - i);
    head.forward(size_t(nb), x + size_t(i) * size_t(head.dim()), angles.data());
    f(i, nb, angles.data());
  }
}

// Fewest codes worth a thread when one query's probes are split (IndexFidelityFlat splits its
// scan in blocks of the same size).
constexpr size_t kMinCodesPerThread = 1024;

struct ScanCounts {
  size_t lists = 0;  // non-empty lists scored
  size_t codes = 0;  // codes scored
};

// Scores the lists probes[0 … np) of one query (already set on the scanner) into its heap,
// stopping once max_codes codes have been scored (0: no limit), as IndexIVF does.
ScanCounts scan_probes(const faiss::InvertedLists& lists, FidelityIVFScanner& scanner,
                       const idx_t* probes, idx_t np, idx_t k, float* distances, idx_t* labels,
                       size_t max_codes) {
  ScanCounts counts;
  for (idx_t p = 0; p < np; ++p) {
    const idx_t key = probes[p];
    if (key < 0) continue;  // fewer centroids than probes
    const size_t size = lists.list_size(key);
    if (size == 0) continue;
    faiss::InvertedLists::ScopedCodes codes(&lists, key);
    faiss::InvertedLists::ScopedIds ids(&lists, key);
    scanner.set_list(key, 0.0f);
    scanner.scan_codes(size, codes.get(), ids.get(), distances, labels, size_t(k));
    ++counts.lists;
    counts.codes += size;
    if (max_codes > 0 && counts.codes >= max_codes) break;
  }
  return counts;
}

}  // namespace

IndexFidelityIVF::IndexFidelityIVF(FidelityHead head, CodeType code_type, size_t nlist)
    : head_(std::move(head)), codec_(head_.codec(code_type)) {
  FAISS_THROW_IF_NOT_FMT(nlist >= 1 && nlist <= kMaxLists,
                         "IndexFidelityIVF: nlist=%zu must be in [1, %zu]", nlist, kMaxLists);
  FAISS_THROW_IF_NOT_MSG(head_.qubits() > 0, "IndexFidelityIVF needs a non-empty head (q > 0)");
  // IndexIVF's own constructor insists on quantizer->d == d; ours is 2q by design, so the
  // fields are set here instead.
  d = head_.dim();
  metric_type = faiss::METRIC_INNER_PRODUCT;
  this->nlist = nlist;
  quantizer = new faiss::IndexFlatL2(bloch_dim());
  own_fields = true;
  code_size = codec_.code_size();
  invlists = new faiss::ArrayInvertedLists(nlist, code_size);
  own_invlists = true;
  is_trained = false;
}

IndexFidelityIVF::IndexFidelityIVF(const HeadSpec& spec, CodeType code_type, size_t nlist)
    : IndexFidelityIVF(FidelityHead::make(spec), code_type, nlist) {
  train_head = true;
}

const faiss::IndexFlatL2& IndexFidelityIVF::bloch_quantizer() const {
  const auto* flat = dynamic_cast<const faiss::IndexFlatL2*>(quantizer);
  FAISS_THROW_IF_NOT_MSG(flat && flat->d == bloch_dim(),
                         "IndexFidelityIVF: the quantizer is not an IndexFlatL2 of dimension 2q");
  return *flat;
}

void IndexFidelityIVF::train(idx_t n, const float* x) {
  FAISS_THROW_IF_NOT_FMT(ntotal == 0,
                         "train on an index holding %lld codes: retraining would leave them "
                         "encoded by the old head and lists (reset() first, then re-add)",
                         static_cast<long long>(ntotal));
  FAISS_THROW_IF_NOT_FMT(n >= idx_t(nlist),
                         "train: n=%lld training vectors for nlist=%zu lists (k-means needs "
                         "n >= nlist)",
                         static_cast<long long>(n), nlist);
  FidelityHead trained = head_;
  HeadTrainingResult result = last_training;
  if (train_head) result = train_head_unsupervised(trained, training, size_t(n), x);

  const int q = codec_.qubits();
  std::vector<float> bloch(size_t(n) * size_t(bloch_dim()));
  {
    std::vector<float> angles(size_t(n) * size_t(q));
    trained.forward(size_t(n), x, angles.data());
    bloch_vectors(size_t(n), q, angles.data(), bloch.data());
  }
  is_trained = false;
  quantizer->reset();
  faiss::Clustering kmeans(bloch_dim(), int(nlist), cp);
  kmeans.train(n, bloch.data(), *quantizer);
  quantizer->is_trained = true;
  head_ = std::move(trained);
  codec_ = head_.codec(codec_.type());
  last_training = result;
  is_trained = true;
}

void IndexFidelityIVF::assign_angles(idx_t n, const float* angles, idx_t* list_nos) const {
  std::vector<float> bloch(size_t(n) * size_t(bloch_dim()));
  bloch_vectors(size_t(n), codec_.qubits(), angles, bloch.data());
  quantizer->assign(n, bloch.data(), list_nos);
}

void IndexFidelityIVF::probe_angles(idx_t n, const float* angles, idx_t nprobe, idx_t* list_nos,
                                    float* coarse_dis) const {
  std::vector<float> bloch(size_t(n) * size_t(bloch_dim()));
  bloch_vectors(size_t(n), codec_.qubits(), angles, bloch.data());
  quantizer->search(n, bloch.data(), nprobe, coarse_dis, list_nos);
}

void IndexFidelityIVF::add_with_ids(idx_t n, const float* x, const idx_t* xids) {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index is not trained: call train() first");
  std::vector<idx_t> list_nos(size_t(std::min(n, kBatch)));
  std::vector<uint8_t> codes(list_nos.size() * code_size);
  for_each_angle_batch(head_, n, x, [&](idx_t i, idx_t nb, const float* angles) {
    assign_angles(nb, angles, list_nos.data());
    codec_.encode(size_t(nb), angles, codes.data());
    add_codes(nb, codes.data(), xids ? xids + i : nullptr, list_nos.data());
  });
}

void IndexFidelityIVF::add_core(idx_t n, const float* x, const idx_t* xids, const idx_t* list_nos) {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index is not trained: call train() first");
  FAISS_THROW_IF_NOT_MSG(list_nos, "add_core: list numbers are required");
  std::vector<uint8_t> codes(size_t(std::min(n, kBatch)) * code_size);
  for_each_angle_batch(head_, n, x, [&](idx_t i, idx_t nb, const float* angles) {
    codec_.encode(size_t(nb), angles, codes.data());
    add_codes(nb, codes.data(), xids ? xids + i : nullptr, list_nos + i);
  });
}

void IndexFidelityIVF::add_codes(idx_t n, const uint8_t* codes, const idx_t* xids,
                                 const idx_t* list_nos) {
  for (idx_t i = 0; i < n; ++i)
    FAISS_THROW_IF_NOT_FMT(list_nos[i] < idx_t(nlist), "add: list number %lld is not < nlist=%zu",
                           static_cast<long long>(list_nos[i]), nlist);
  direct_map.check_can_add(xids);
  faiss::DirectMapAdd direct_map_add(direct_map, size_t(n), xids);
  for (idx_t i = 0; i < n; ++i) {
    const idx_t id = xids ? xids[i] : ntotal + i;
    if (list_nos[i] < 0) {
      // As IndexIVF: the vector takes an id but is not stored.
      direct_map_add.add(size_t(i), -1, 0);
      continue;
    }
    const size_t offset =
        invlists->add_entry(size_t(list_nos[i]), id, codes + size_t(i) * code_size);
    direct_map_add.add(size_t(i), list_nos[i], offset);
  }
  ntotal += n;
}

void IndexFidelityIVF::encode_vectors(idx_t n, const float* x, const idx_t* list_nos,
                                      uint8_t* codes, bool include_listno) const {
  FAISS_THROW_IF_NOT_MSG(is_trained || !train_head,
                         "index head is not trained: call train() first");
  const size_t coarse = include_listno ? coarse_code_size() : 0;
  const size_t stride = coarse + code_size;
  std::vector<uint8_t> batch(size_t(std::min(n, kBatch)) * code_size);
  for_each_angle_batch(head_, n, x, [&](idx_t i0, idx_t nb, const float* angles) {
    codec_.encode(size_t(nb), angles, batch.data());
    for (idx_t j = 0; j < nb; ++j) {
      uint8_t* out = codes + size_t(i0 + j) * stride;
      const idx_t list_no = list_nos[i0 + j];
      if (list_no < 0) {  // not stored: a zero code, as FAISS's IVF kinds write
        std::memset(out, 0, stride);
        continue;
      }
      if (include_listno) encode_listno(list_no, out);
      std::memcpy(out + coarse, batch.data() + size_t(j) * code_size, code_size);
    }
  });
}

void IndexFidelityIVF::sa_encode(idx_t n, const float* x, uint8_t* bytes) const {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index is not trained: call train() first");
  const size_t coarse = coarse_code_size();
  std::vector<idx_t> list_nos(size_t(std::min(n, kBatch)));
  std::vector<uint8_t> batch(list_nos.size() * code_size);
  for_each_angle_batch(head_, n, x, [&](idx_t i0, idx_t nb, const float* angles) {
    assign_angles(nb, angles, list_nos.data());
    codec_.encode(size_t(nb), angles, batch.data());
    for (idx_t j = 0; j < nb; ++j) {
      uint8_t* out = bytes + size_t(i0 + j) * (coarse + code_size);
      encode_listno(list_nos[j], out);
      std::memcpy(out + coarse, batch.data() + size_t(j) * code_size, code_size);
    }
  });
}

void IndexFidelityIVF::compute_angles(idx_t n, const float* x, float* angles) const {
  head_.forward(size_t(n), x, angles);
}

void IndexFidelityIVF::search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                              const faiss::SearchParameters* params) const {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index is not trained: call train() first");
  std::vector<float> angles(size_t(n) * size_t(codec_.qubits()));
  head_.forward(size_t(n), x, angles.data());
  search_angles(n, angles.data(), k, distances, labels, params);
}

void IndexFidelityIVF::search_angles(idx_t n, const float* angles, idx_t k, float* distances,
                                     idx_t* labels, const faiss::SearchParameters* params) const {
  FAISS_THROW_IF_NOT_FMT(k > 0, "search: k=%lld must be positive", static_cast<long long>(k));
  FAISS_THROW_IF_NOT_MSG(is_trained, "index is not trained: call train() first");
  // Plain SearchParameters carry a selector only; SearchParametersIVF also nprobe and max_codes.
  const auto* ivf = dynamic_cast<const faiss::SearchParametersIVF*>(params);
  const size_t wanted = ivf ? ivf->nprobe : nprobe;
  FAISS_THROW_IF_NOT_FMT(wanted >= 1, "search: nprobe=%zu must be at least 1", wanted);
  const idx_t np = idx_t(std::min(wanted, nlist));
  std::vector<idx_t> assign(size_t(n) * size_t(np));
  std::vector<float> coarse_dis(assign.size());
  probe_angles(n, angles, np, assign.data(), coarse_dis.data());
  scan_lists(n, angles, k, assign.data(), np, distances, labels, false,
             params ? params->sel : nullptr, ivf ? ivf->max_codes : max_codes, nullptr);
}

void IndexFidelityIVF::search_preassigned(idx_t n, const float* x, idx_t k, const idx_t* assign,
                                          const float*, float* distances, idx_t* labels,
                                          bool store_pairs,
                                          const faiss::IVFSearchParameters* params,
                                          faiss::IndexIVFStats* stats) const {
  FAISS_THROW_IF_NOT_FMT(k > 0, "search: k=%lld must be positive", static_cast<long long>(k));
  FAISS_THROW_IF_NOT_MSG(is_trained, "index is not trained: call train() first");
  const size_t wanted = params ? params->nprobe : nprobe;
  FAISS_THROW_IF_NOT_FMT(wanted >= 1, "search: nprobe=%zu must be at least 1", wanted);
  const idx_t np = idx_t(std::min(wanted, nlist));
  // Checked here, outside the parallel scan, where a throw can still reach the caller.
  for (idx_t j = 0; j < n * np; ++j)
    FAISS_THROW_IF_NOT_FMT(assign[j] < idx_t(nlist),
                           "search_preassigned: list number %lld is not < nlist=%zu",
                           static_cast<long long>(assign[j]), nlist);
  std::vector<float> angles(size_t(n) * size_t(codec_.qubits()));
  head_.forward(size_t(n), x, angles.data());
  scan_lists(n, angles.data(), k, assign, np, distances, labels, store_pairs,
             params ? params->sel : nullptr, params ? params->max_codes : max_codes, stats);
}

void IndexFidelityIVF::scan_lists(idx_t n, const float* angles, idx_t k, const idx_t* assign,
                                  idx_t nprobe, float* distances, idx_t* labels, bool store_pairs,
                                  const faiss::IDSelector* sel, size_t max_codes,
                                  faiss::IndexIVFStats* stats) const {
  FAISS_THROW_IF_NOT_MSG(!(store_pairs && sel),
                         "search: an IDSelector cannot be combined with store_pairs");
  const int q = codec_.qubits();
  const int threads = omp_get_max_threads();
  size_t lists_scanned = 0, codes_scored = 0;
  // Enough queries to keep every thread busy (or a max_codes budget, which is spent in probe
  // order): one query per thread. Fewer: each query's probes are split across the threads.
  if (n >= threads || nprobe == 1 || max_codes > 0) {
#pragma omp parallel if (n > 1) reduction(+ : lists_scanned, codes_scored)
    {
      FidelityIVFScanner scanner(head_, codec_, store_pairs, sel);
#pragma omp for schedule(dynamic)
      for (idx_t i = 0; i < n; ++i) {
        float* di = distances + i * k;
        idx_t* li = labels + i * k;
        faiss::heap_heapify<TopK>(k, di, li);
        scanner.set_angles(angles + size_t(i) * q);
        const ScanCounts c =
            scan_probes(*invlists, scanner, assign + i * nprobe, nprobe, k, di, li, max_codes);
        faiss::heap_reorder<TopK>(k, di, li);
        lists_scanned += c.lists;
        codes_scored += c.codes;
      }
    }
  } else {
    std::vector<float> part_scores(size_t(std::min<idx_t>(threads, nprobe)) * k);
    std::vector<idx_t> part_ids(part_scores.size());
    for (idx_t i = 0; i < n; ++i) {
      // A thread joins only with at least kMinCodesPerThread codes to score: below that, starting
      // the team costs more than the scan it would share.
      size_t probed_codes = 0;
      for (idx_t p = 0; p < nprobe; ++p)
        if (assign[i * nprobe + p] >= 0)
          probed_codes += invlists->list_size(assign[i * nprobe + p]);
      const int parts = int(std::max<size_t>(
          1, std::min({size_t(threads), size_t(nprobe), probed_codes / kMinCodesPerThread})));
      for (int t = 0; t < parts; ++t)
        faiss::heap_heapify<TopK>(k, part_scores.data() + t * k, part_ids.data() + t * k);
#pragma omp parallel num_threads(parts) if (parts > 1) reduction(+ : lists_scanned, codes_scored)
      {
        // Thread t of T scores probes [nprobe·t/T, nprobe·(t+1)/T) into heap t; T may be below
        // `parts` (the unused heaps stay empty).
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        FidelityIVFScanner scanner(head_, codec_, store_pairs, sel);
        scanner.set_angles(angles + size_t(i) * q);
        const idx_t begin = nprobe * t / team, end = nprobe * (t + 1) / team;
        const ScanCounts c =
            scan_probes(*invlists, scanner, assign + i * nprobe + begin, end - begin, k,
                        part_scores.data() + t * k, part_ids.data() + t * k, 0);
        lists_scanned += c.lists;
        codes_scored += c.codes;
      }
      float* di = distances + i * k;
      idx_t* li = labels + i * k;
      faiss::heap_heapify<TopK>(k, di, li);
      for (size_t j = 0; j < size_t(parts) * size_t(k); ++j)
        if (part_ids[j] >= 0 && part_scores[j] > di[0])
          faiss::heap_replace_top<TopK>(k, di, li, part_scores[j], part_ids[j]);
      faiss::heap_reorder<TopK>(k, di, li);
    }
  }
  if (stats) {
    stats->nq += size_t(n);
    stats->nlist += lists_scanned;
    stats->ndis += codes_scored;
  }
}

void IndexFidelityIVF::range_search(idx_t n, const float* x, float radius,
                                    faiss::RangeSearchResult* result,
                                    const faiss::SearchParameters* params) const {
  FAISS_THROW_IF_NOT_MSG(is_trained, "index is not trained: call train() first");
  const auto* ivf = dynamic_cast<const faiss::SearchParametersIVF*>(params);
  faiss::SearchParametersIVF probe;
  probe.nprobe = ivf ? ivf->nprobe : nprobe;
  probe.max_codes = ivf ? ivf->max_codes : max_codes;
  probe.sel = params ? params->sel : nullptr;
  FAISS_THROW_IF_NOT_FMT(probe.nprobe >= 1, "range_search: nprobe=%zu must be at least 1",
                         probe.nprobe);
  probe.nprobe = std::min(probe.nprobe, nlist);
  std::vector<idx_t> keys(size_t(n) * probe.nprobe);
  std::vector<float> coarse_dis(keys.size());
  {
    std::vector<float> angles(size_t(n) * size_t(codec_.qubits()));
    head_.forward(size_t(n), x, angles.data());
    probe_angles(n, angles.data(), idx_t(probe.nprobe), keys.data(), coarse_dis.data());
  }
  // IndexIVF's range scan hands each raw query to our scanner (set_query runs the head).
  range_search_preassigned(n, x, radius, keys.data(), coarse_dis.data(), result, false, &probe);
}

faiss::InvertedListScanner* IndexFidelityIVF::get_InvertedListScanner(
    bool store_pairs, const faiss::IDSelector* sel) const {
  return new FidelityIVFScanner(head_, codec_, store_pairs, sel);
}

void IndexFidelityIVF::reconstruct_from_offset(int64_t, int64_t, float*) const {
  FAISS_THROW_MSG(
      "IndexFidelityIVF cannot reconstruct raw vectors: the circuit head is many-to-one");
}

void IndexFidelityIVF::search_and_reconstruct(idx_t, const float*, idx_t, float*, idx_t*, float*,
                                              const faiss::SearchParameters*) const {
  FAISS_THROW_MSG(
      "IndexFidelityIVF cannot reconstruct raw vectors: the circuit head is many-to-one; "
      "use search()");
}

void IndexFidelityIVF::update_vectors(int, const idx_t*, const float*) {
  FAISS_THROW_MSG(
      "IndexFidelityIVF::update_vectors is not supported: remove_ids() then add_with_ids()");
}

void IndexFidelityIVF::check_compatible_for_merge(const faiss::Index& other) const {
  const auto* o = dynamic_cast<const IndexFidelityIVF*>(&other);
  FAISS_THROW_IF_NOT_MSG(o, "merge_from: the other index is not an IndexFidelityIVF");
  FAISS_THROW_IF_NOT_MSG(o->d == d && o->nlist == nlist && o->codec_.type() == codec_.type() &&
                             o->codec_.qubits() == codec_.qubits(),
                         "merge_from: dimension, nlist, qubits or code type differ");
  FAISS_THROW_IF_NOT_MSG(o->head_ == head_,
                         "merge_from: the indexes use different heads, so their codes are not "
                         "comparable");
  FAISS_THROW_IF_NOT_MSG(o->bloch_quantizer().codes == bloch_quantizer().codes,
                         "merge_from: the coarse centroids differ, so the lists do not match");
  FAISS_THROW_IF_NOT_MSG(direct_map.no() && o->direct_map.no(),
                         "merge_from: indexes with a direct map cannot be merged (as IndexIVF)");
}

}  // namespace bloch
