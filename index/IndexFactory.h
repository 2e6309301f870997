#pragma once

// One string names an index configuration (in the spirit of faiss::index_factory):
//
//   spec  := head "," kind
//   head  := "QC" q [ "x" bits ] [ "B" butterflies [ "W" width ] ] [ "raw" ]
//              q           output qubits (1 … d)
//              bits        code bits per qubit: 8 (default), 4, or 32 (float angles)
//              butterflies mixer depth in front of the circuit (default kDefaultButterflies;
//                          B0 = the circuit alone)
//              width       lower bound on the mixer width (HeadSpec::min_mixer_width; default
//                          2q, rounded up to a power of two ≥ d)
//              raw         the paper's raw readout instead of kDefaultReadout (the normalised
//                          one, NormalizedReadout.h); "B0raw" is the paper-exact head
//   kind  := "Flat"        exact scan (IndexFidelityFlat)
//          | "HNSW" M      graph with M links per node over the flat codes (faiss::IndexHNSW
//                          with an IndexFidelityFlat as storage); M in 2 … 256
//          | "IVF" nlist   inverted lists under a k-means quantizer on Bloch vectors
//                          (IndexFidelityIVF); nlist in 1 … 2^20, nprobe 1 until set
//   fast scan := "QC" q "x4fs" [ "B" butterflies [ "W" width ] ] [ "raw" ]
//                "," "Refine(QC" q "x" bits ")"
//                          4-bit codes scanned with in-register look-ups, the k·k_factor best
//                          re-ranked by exact codes of 8 or 32 bits (IndexFidelityFastScan);
//                          the Refine part names the same q
//
// Examples: "QC128,Flat", "QC96x4,Flat", "QC128B0raw,HNSW32", "QC256x32,Flat", "QC256,IVF1024",
// "QC256B3W2048,Flat", "QC128x4fs,Refine(QC128x8)".
// The head is fresh (seeded) and must be trained: train() on the returned index trains it (and,
// for IVF, then runs k-means on the training set, which needs at least nlist vectors).

#include <faiss/Index.h>

#include <cstdint>
#include <memory>
#include <string>

namespace bloch {

/// Builds the index a spec names for raw vectors of dimension d. Throws faiss::FaissException
/// naming the offending part of the string.
std::unique_ptr<faiss::Index> index_factory(int d, const std::string& spec, uint64_t seed = 1234);

}  // namespace bloch
