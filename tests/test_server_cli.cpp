// The command-line tools end to end, as processes against a real blochd: bulk-load the
// committed fixture with bloch-indexer, query with `bloch --json search`, and compare with the
// in-process exact index; resume after a killed load; every bad-file case stops with the file
// and row named and leaves the collection consistent.

#include <gtest/gtest.h>
#include <hdf5.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "BlochdProcess.h"
#include "ServerTestKit.h"
#include "VectorSource.h"
#include "index/IndexFidelityFlat.h"

namespace bloch::testing {
namespace {

constexpr int kDim = 32;
constexpr int kQubits = 16;
const std::string kFixtures = BLOCH_FIXTURES_DIR;

struct ToolRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

/// Runs a tool to completion (standard input from the file `input`, if given); its output is
/// captured through a file in `dir`.
ToolRun run_tool(const ScratchDir& dir, std::vector<std::string> args,
                 const std::string& input = "") {
  static int counter = 0;
  const std::string log = dir / ("tool-" + std::to_string(counter++) + ".log");
  const pid_t pid = spawn_logged(std::move(args), log, {}, input);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::ifstream in(log);
  ToolRun run;
  run.output.assign(std::istreambuf_iterator<char>(in), {});
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

/// A float32 .npy file of rows × cols (NumPy format 1.0).
void write_npy(const std::string& path, const std::vector<float>& data, size_t rows, size_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t length = uint16_t(header.size());
  out.write(reinterpret_cast<const char*>(&length), 2);
  out << header;
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * 4));
}

/// The fixture's rows (the .npy data after its header).
std::vector<float> fixture_rows(const std::string& name, size_t count) {
  auto source = tools::open_vector_source(kFixtures + "/" + name);
  std::vector<tools::VectorRow> rows;
  while (source->read(1024, rows) > 0) {
  }
  std::vector<float> values;
  for (const auto& row : rows) values.insert(values.end(), row.values.begin(), row.values.end());
  EXPECT_EQ(values.size(), count) << name;
  return values;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.wait_ready()) << "blochd did not start";
    address_ = "127.0.0.1:" + std::to_string(server_.port());
    stub_ = connect(server_.port());
    std::ofstream(dir_ / "head.bin", std::ios::binary) << head_file_bytes(kDim, kQubits);
  }
  ToolRun bloch(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {BLOCH_CLI_PATH, "--address", address_});
    return run_tool(dir_, std::move(args), input);
  }
  ToolRun indexer(std::vector<std::string> args) {
    args.insert(args.begin(), {BLOCH_INDEXER_PATH, "--address", address_});
    return run_tool(dir_, std::move(args));
  }
  void create(const std::string& name) {
    const ToolRun run = bloch({"create", name, "--dimension", std::to_string(kDim), "--spec",
                               "QC16,Flat", "--head-file", dir_ / "head.bin"});
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  uint64_t documents(const std::string& name) {
    v1::DescribeCollectionRequest request;
    request.set_name(name);
    v1::CollectionInfo info;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->DescribeCollection(&context, request, &info).ok());
    return info.documents();
  }

  ScratchDir dir_{"cli"};
  BlochdProcess server_{dir_};
  std::string address_;
  std::unique_ptr<v1::Bloch::Stub> stub_;
};

TEST_F(CliTest, LoadTheFixtureAndSearchEqualsTheExactIndex) {
  create("docs");
  const ToolRun load = indexer(
      {"-c", "docs", kFixtures + "/docs.npy", "--ids", kFixtures + "/docs-ids.txt", "--payloads",
       kFixtures + "/docs-payloads.jsonl", "--payload-id-field", "id", "--batch", "50"});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  EXPECT_NE(load.output.find("240 upserted"), std::string::npos) << load.output;
  EXPECT_EQ(documents("docs"), 240u);

  const ToolRun search =
      bloch({"--json", "search", "docs", "--vectors", kFixtures + "/queries.npy", "-k", "5"});
  ASSERT_EQ(search.exit_code, 0) << search.output;

  IndexFidelityFlat local(FidelityHead::from_bytes(head_file_bytes(kDim, kQubits), "head"),
                          CodeType::k8bit);
  const auto docs = fixture_rows("docs.npy", 240 * kDim);
  local.add(240, docs.data());
  const auto queries = fixture_rows("queries.npy", 6 * kDim);
  std::istringstream lines(search.output);
  int query = 0;
  for (std::string line; std::getline(lines, line); ++query) {
    const auto result = nlohmann::json::parse(line);
    ASSERT_EQ(result["query"], query);
    std::vector<float> scores(240);
    std::vector<faiss::Index::idx_t> labels(240);
    local.search(1, queries.data() + query * kDim, 240, scores.data(), labels.data());
    std::map<std::string, float> score_of;
    for (int j = 0; j < 240; ++j) {
      char id[16];
      std::snprintf(id, sizeof id, "doc-%03lld", static_cast<long long>(labels[j]));
      score_of[id] = scores[j];
    }
    ASSERT_EQ(result["hits"].size(), 5u);
    for (int j = 0; j < 5; ++j) {
      const auto& hit = result["hits"][j];
      EXPECT_FLOAT_EQ(hit["log_fidelity"].get<float>(), scores[j]) << line;
      EXPECT_FLOAT_EQ(hit["log_fidelity"].get<float>(), score_of[hit["id"].get<std::string>()]);
      EXPECT_TRUE(hit["payload"]["topic"].is_string()) << line;
    }
  }
  EXPECT_EQ(query, 6);

  // The readable table shows the payload fields.
  const ToolRun table = bloch({"search", "docs", "--like", "doc-007", "-k", "3"});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("doc-007"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("topic="), std::string::npos) << table.output;
  EXPECT_EQ(bloch({"health"}).exit_code, 0);
  EXPECT_EQ(bloch({"get", "docs", "doc-001"}).exit_code, 0);
  EXPECT_EQ(bloch({"delete", "docs", "doc-001"}).exit_code, 0);
  EXPECT_EQ(documents("docs"), 239u);
  const ToolRun compacted = bloch({"compact", "docs"});
  EXPECT_NE(compacted.output.find("239 documents, 239 index entries"), std::string::npos)
      << compacted.output;
  EXPECT_NE(bloch({"describe", "docs"}).output.find("\"documents\": 239"), std::string::npos);
}

/// An untrained collection created by the indexer, trained supervised from (query, relevant
/// document) pairs once every row is stored; then queries as JSON arrays on stdin.
TEST_F(CliTest, SupervisedTrainingFromPairsAndQueriesOnStdin) {
  {
    std::ofstream ids(dir_ / "query-ids.txt");
    std::ofstream qrels(dir_ / "qrels.tsv");
    qrels << "query-id\tcorpus-id\tscore\n";
    for (int q = 0; q < 6; ++q) {
      ids << "q" << q << "\n";
      for (int j = 0; j < 3; ++j) {
        char doc[16];
        std::snprintf(doc, sizeof doc, "doc-%03d", q * 7 + j);
        qrels << "q" << q << "\t" << doc << "\t1\n";
      }
    }
  }
  const ToolRun load =
      indexer({"-c", "sup", "--create", "--spec", "QC16,Flat", kFixtures + "/docs.npy", "--ids",
               kFixtures + "/docs-ids.txt", "--train-queries", kFixtures + "/queries.npy",
               "--train-query-ids", dir_ / "query-ids.txt", "--train-qrels", dir_ / "qrels.tsv",
               "--epochs", "2"});
  ASSERT_EQ(load.exit_code, 0) << load.output;
  EXPECT_NE(load.output.find("training the head (supervised, 18 pairs)"), std::string::npos)
      << load.output;
  EXPECT_EQ(documents("sup"), 240u);
  const ToolRun described = bloch({"--json", "describe", "sup"});
  EXPECT_NE(described.output.find("\"head_state\":\"trained\""), std::string::npos)
      << described.output;

  const auto queries = fixture_rows("queries.npy", 6 * kDim);
  {
    std::ofstream in(dir_ / "stdin.jsonl");
    in << nlohmann::json(std::vector<float>(queries.begin(), queries.begin() + kDim)) << "\n";
    in << nlohmann::json{{"vector",
                          std::vector<float>(queries.begin() + kDim, queries.begin() + 2 * kDim)}}
       << "\n";
  }
  const ToolRun stdin_search =
      bloch({"--json", "search", "sup", "--vectors", "-", "-k", "4"}, dir_ / "stdin.jsonl");
  ASSERT_EQ(stdin_search.exit_code, 0) << stdin_search.output;
  std::istringstream lines(stdin_search.output);
  int results = 0;
  for (std::string line; std::getline(lines, line); ++results) {
    EXPECT_EQ(nlohmann::json::parse(line)["hits"].size(), 4u) << line;
  }
  EXPECT_EQ(results, 2);
}

TEST_F(CliTest, ResumeAfterAKilledLoadEndsWithTheSameCollection) {
  create("big");
  const size_t rows = 30000;
  const auto set = make_clustered(rows, kDim, 16, 1.0f, 0.3f, 5);
  write_npy(dir_ / "big.npy", set.x, rows, kDim);
  std::vector<std::string> args = {BLOCH_INDEXER_PATH, "--address", address_, "-c",          "big",
                                   dir_ / "big.npy",   "--batch",   "100",    "--in-flight", "1"};
  const pid_t pid = spawn_logged(args, dir_ / "killed.log");
  for (int i = 0; i < 400 && documents("big") < 2000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  // A batch the server was already handling still commits; let it land before counting.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const uint64_t before = documents("big");
  ASSERT_GT(before, 0u);
  ASSERT_LT(before, rows) << "the load finished before it could be killed";
  args.erase(args.begin(), args.begin() + 3);
  const ToolRun resumed = indexer(args);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(documents("big"), rows);
  std::string count = std::to_string(before);  // as the summary prints it: 2,200
  for (int at = int(count.size()) - 3; at > 0; at -= 3) count.insert(size_t(at), ",");
  EXPECT_NE(resumed.output.find(count + " already stored"), std::string::npos)
      << "before=" << before << "\n"
      << resumed.output;
  // No document was written twice: the index holds exactly one entry per row.
  v1::DescribeCollectionRequest request;
  request.set_name("big");
  v1::CollectionInfo info;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->DescribeCollection(&context, request, &info).ok());
  EXPECT_EQ(info.index_entries(), rows);
}

TEST_F(CliTest, BadFilesStopWithFileAndRowAndLeaveTheCollectionConsistent) {
  create("docs");
  const auto good = fixture_rows("docs.npy", 240 * kDim);
  struct Case {
    std::string file;
    std::vector<std::string> extra;
    std::string expected;
    uint64_t documents;  // stored after the failed run
  };
  std::vector<Case> cases;
  {
    // Truncated: the header promises 240 rows.
    std::ifstream in(kFixtures + "/docs.npy", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir_ / "truncated.npy", std::ios::binary) << bytes.substr(0, bytes.size() - 100);
    cases.push_back({dir_ / "truncated.npy", {}, "truncated", 0});
  }
  {
    auto rows = good;
    rows[size_t(130) * kDim + 3] = std::numeric_limits<float>::quiet_NaN();
    write_npy(dir_ / "nan.npy", rows, 240, kDim);
    // Batches of 50: rows 0–99 are committed before the batch holding row 130 is refused.
    cases.push_back(
        {dir_ / "nan.npy", {"--batch", "50", "--in-flight", "1"}, "row 130: value 3 is NaN", 100});
  }
  {
    write_npy(dir_ / "narrow.npy", std::vector<float>(10 * 31, 0.5f), 10, 31);
    cases.push_back({dir_ / "narrow.npy",
                     {},
                     "has dimension 31 but collection 'docs' has "
                     "dimension 32",
                     100});
  }
  {
    std::ofstream out(dir_ / "cut.fvecs", std::ios::binary);
    for (int r = 0; r < 3; ++r) {
      const int32_t d = kDim;
      out.write(reinterpret_cast<const char*>(&d), 4);
      out.write(reinterpret_cast<const char*>(good.data() + r * kDim), r == 2 ? 40 : 4 * kDim);
    }
    cases.push_back({dir_ / "cut.fvecs", {}, "not a whole number", 100});
  }
  {
    std::ofstream out(dir_ / "bad.jsonl");
    out << "{\"id\": \"j0\", \"vector\": " << nlohmann::json(std::vector<float>(kDim, 0.1f))
        << "}\n{\"id\": \"j1\", \"vector\": [1, 2,\n";
    cases.push_back({dir_ / "bad.jsonl", {}, "row 1: not valid JSON", 100});
  }
  {
    const hid_t file =
        H5Fcreate((dir_ / "other.hdf5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    const hsize_t dims[2] = {4, hsize_t(kDim)};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t set =
        H5Dcreate2(file, "test", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, good.data());
    H5Dclose(set);
    H5Sclose(space);
    H5Fclose(file);
    cases.push_back({dir_ / "other.hdf5", {}, "has no dataset 'train'", 100});
  }
  for (const Case& c : cases) {
    std::vector<std::string> args = {"-c", "docs", c.file, "--id-prefix", "row-"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const ToolRun run = indexer(args);
    EXPECT_EQ(run.exit_code, 1) << c.file << "\n" << run.output;
    EXPECT_NE(run.output.find("file '" + c.file + "'"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find(c.expected), std::string::npos) << run.output;
    EXPECT_EQ(documents("docs"), c.documents) << c.file;
  }
  // The HDF5 file loads once its dataset is named.
  const ToolRun named =
      indexer({"-c", "docs", dir_ / "other.hdf5", "--dataset", "test", "--id-prefix", "h5-"});
  EXPECT_EQ(named.exit_code, 0) << named.output;
  EXPECT_EQ(documents("docs"), 104u);
  // With --skip-bad-rows the NaN row is counted and the rest is loaded.
  const ToolRun skipping =
      indexer({"-c", "docs", dir_ / "nan.npy", "--id-prefix", "row-", "--skip-bad-rows"});
  EXPECT_EQ(skipping.exit_code, 0) << skipping.output;
  EXPECT_NE(skipping.output.find("1 rejected"), std::string::npos) << skipping.output;
  EXPECT_EQ(documents("docs"), 104u + 139u);
}

}  // namespace
}  // namespace bloch::testing
