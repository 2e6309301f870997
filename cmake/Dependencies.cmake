# Third-party dependencies, all from Debian 12 packages (deploy/setup.sh installs them).

find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(BLAS REQUIRED)
find_package(LAPACK REQUIRED)

# Debian's FAISS 1.7.3 ships only a static libfaiss.a and headers, no CMake config:
# wrap it in an imported target that carries its OpenMP/BLAS/LAPACK link needs.
find_path(FAISS_INCLUDE_DIR faiss/IndexFlatCodes.h REQUIRED)
find_library(FAISS_LIBRARY NAMES libfaiss.a faiss REQUIRED)
add_library(faiss::faiss STATIC IMPORTED)
set_target_properties(faiss::faiss PROPERTIES
  IMPORTED_LOCATION "${FAISS_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${FAISS_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "OpenMP::OpenMP_CXX;${LAPACK_LIBRARIES};${BLAS_LIBRARIES}")

# xxHash is used header-only (XXH_INLINE_ALL) for file checksums: no link dependency.
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)

# server/ and client/ (option BLOCH_BUILD_SERVER): protobuf + gRPC (CMake configs shipped by Debian), RocksDB, Boost
# (header-only Asio/Beast), spdlog, CLI11, nlohmann-json, toml++.
if(BLOCH_BUILD_SERVER)
  find_package(Threads REQUIRED)
  find_package(Protobuf REQUIRED)
  find_package(gRPC CONFIG REQUIRED)
  find_package(RocksDB CONFIG REQUIRED)
  find_package(Boost 1.74 REQUIRED)
  find_package(spdlog CONFIG REQUIRED)
  find_package(CLI11 CONFIG REQUIRED)
  find_package(nlohmann_json CONFIG REQUIRED)
  find_package(tomlplusplus CONFIG REQUIRED)
  # client/ tools: ann-benchmarks HDF5 files (C API) and gzipped JSONL sidecars (zlib).
  find_package(HDF5 REQUIRED COMPONENTS C)
  find_package(ZLIB REQUIRED)
endif()
