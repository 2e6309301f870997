// Checksummed binary records and whole-file helpers (index/BinaryIO.h): round trips, the
// record layout, and refusal of damaged or short records with messages naming the field.

#include <faiss/impl/FaissException.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "index/BinaryIO.h"

namespace bloch {
namespace {

/// Runs `fn`, expecting a FaissException, and returns its message.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const faiss::FaissException& e) {
    return e.what();
  }
  ADD_FAILURE() << "no faiss::FaissException thrown";
  return "";
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

struct Pod {
  int32_t a;
  float b;
  char c[4];
};

TEST(BinaryIO, RoundTripOfValuesVectorsAndBytes) {
  const std::string binary("a\0b\xff\x00z", 6);  // embedded NULs and high bytes survive
  BinaryWriter w;
  w.put<uint8_t>(0xfe);
  w.put<int32_t>(-123456);
  w.put<uint64_t>(0x0123456789abcdefULL);
  w.put<double>(-0.1);
  w.put<float>(std::numeric_limits<float>::denorm_min());
  w.put(std::array<char, 3>{'x', 'y', 'z'});
  w.put(Pod{7, 2.5f, {'p', 'o', 'd', '!'}});
  w.put_vector(std::vector<float>{1.0f, -2.0f, 3.5f});
  w.put_vector(std::vector<uint64_t>{});
  w.put_vector(std::vector<int16_t>{-1, 0, 32767});
  w.put_bytes(binary);
  w.put_bytes("");
  const std::string record = w.finish_with_checksum();

  BinaryReader r(record, "test record");
  EXPECT_EQ(r.what(), "test record");
  EXPECT_EQ(r.get<uint8_t>("u8"), 0xfe);
  EXPECT_EQ(r.get<int32_t>("i32"), -123456);
  EXPECT_EQ(r.get<uint64_t>("u64"), 0x0123456789abcdefULL);
  EXPECT_EQ(r.get<double>("f64"), -0.1);
  EXPECT_EQ(r.get<float>("f32"), std::numeric_limits<float>::denorm_min());
  EXPECT_EQ((r.get<std::array<char, 3>>("chars")), (std::array<char, 3>{'x', 'y', 'z'}));
  const Pod pod = r.get<Pod>("pod");
  EXPECT_EQ(pod.a, 7);
  EXPECT_EQ(pod.b, 2.5f);
  EXPECT_EQ(std::string(pod.c, 4), "pod!");
  EXPECT_EQ(r.get_vector<float>("floats", 3), (std::vector<float>{1.0f, -2.0f, 3.5f}));
  EXPECT_TRUE(r.get_vector<uint64_t>("empty", 0).empty());
  EXPECT_EQ(r.get_vector<int16_t>("shorts", 100), (std::vector<int16_t>{-1, 0, 32767}));
  EXPECT_EQ(r.get_bytes("bytes"), binary);
  EXPECT_EQ(r.get_bytes("empty bytes"), "");
  EXPECT_NO_THROW(r.expect_end());
}

TEST(BinaryIO, RecordLayoutIsLittleEndianPayloadThenChecksum) {
  BinaryWriter w;
  w.put<uint32_t>(0x01020304);
  w.put_bytes("hi");
  const std::string record = w.finish_with_checksum();
  const std::string payload("\x04\x03\x02\x01\x02\0\0\0\0\0\0\0hi", 14);
  ASSERT_EQ(record.size(), payload.size() + 8);
  EXPECT_EQ(record.substr(0, payload.size()), payload);
  uint64_t stored;
  std::memcpy(&stored, record.data() + payload.size(), 8);
  EXPECT_EQ(stored, checksum64(payload));
  // finish_with_checksum leaves the writer empty: the next record is just a checksum.
  const std::string empty = w.finish_with_checksum();
  ASSERT_EQ(empty.size(), 8u);
  std::memcpy(&stored, empty.data(), 8);
  EXPECT_EQ(stored, checksum64(""));
  BinaryReader r(empty, "empty");
  EXPECT_NO_THROW(r.expect_end());
}

TEST(BinaryIO, ChecksumIsSensitiveToContent) {
  EXPECT_EQ(checksum64("abc"), checksum64(std::string("abc")));
  EXPECT_NE(checksum64("abc"), checksum64("abd"));
  EXPECT_NE(checksum64(""), checksum64(std::string(1, '\0')));
}

TEST(BinaryIO, EveryFlippedByteFailsTheChecksum) {
  BinaryWriter w;
  w.put<uint64_t>(42);
  w.put_vector(std::vector<float>{1, 2, 3, 4});
  const std::string record = w.finish_with_checksum();
  for (size_t pos = 0; pos < record.size(); ++pos) {
    std::string damaged = record;
    damaged[pos] = char(damaged[pos] ^ 0x10);
    const std::string msg = error_of([&] { BinaryReader r(damaged, "rec"); });
    EXPECT_TRUE(contains(msg, "checksum mismatch")) << "byte " << pos << ": " << msg;
    EXPECT_TRUE(contains(msg, "rec")) << msg;
  }
}

TEST(BinaryIO, TruncatedRecordsAreRefused) {
  BinaryWriter w;
  w.put<uint64_t>(42);
  w.put_bytes("payload");
  const std::string record = w.finish_with_checksum();
  for (size_t cut = 0; cut < record.size(); ++cut) {
    const std::string msg = error_of([&] { BinaryReader r(record.substr(0, cut), "rec"); });
    EXPECT_TRUE(contains(msg, "truncated")) << "cut " << cut << ": " << msg;
  }
}

TEST(BinaryIO, ReadPastEndNamesTheField) {
  BinaryWriter w;
  w.put<uint32_t>(7);
  const std::string record = w.finish_with_checksum();
  {
    BinaryReader r(record, "rec");
    const std::string msg = error_of([&] { r.get<uint64_t>("header.count"); });
    EXPECT_TRUE(contains(msg, "header.count")) << msg;
    EXPECT_TRUE(contains(msg, "rec")) << msg;
  }
  {
    BinaryReader r(record, "rec");
    EXPECT_EQ(r.get<uint32_t>("first"), 7u);
    const std::string msg = error_of([&] { r.get<uint8_t>("second"); });
    EXPECT_TRUE(contains(msg, "second")) << msg;
  }
}

TEST(BinaryIO, LengthPrefixBeyondTheDataNamesTheField) {
  // A length prefix that claims more bytes/elements than remain (checksum intact).
  BinaryWriter w;
  w.put<uint64_t>(1000);  // claims 1000 bytes / elements
  w.put<uint32_t>(0);
  const std::string record = w.finish_with_checksum();
  {
    BinaryReader r(record, "rec");
    const std::string msg = error_of([&] { r.get_bytes("blob"); });
    EXPECT_TRUE(contains(msg, "blob")) << msg;
  }
  {
    BinaryReader r(record, "rec");
    const std::string msg = error_of([&] { r.get_vector<float>("codes", 1000); });
    EXPECT_TRUE(contains(msg, "codes")) << msg;
  }
}

TEST(BinaryIO, VectorCountAboveMaxIsRefused) {
  BinaryWriter w;
  w.put_vector(std::vector<int32_t>(10, 1));
  const std::string record = w.finish_with_checksum();
  {
    BinaryReader r(record, "rec");
    const std::string msg = error_of([&] { r.get_vector<int32_t>("labels", 9); });
    EXPECT_TRUE(contains(msg, "labels")) << msg;
    EXPECT_TRUE(contains(msg, "10")) << msg;
  }
  BinaryReader r(record, "rec");
  EXPECT_EQ(r.get_vector<int32_t>("labels", 10).size(), 10u);  // exactly max is fine
  EXPECT_NO_THROW(r.expect_end());
}

TEST(BinaryIO, ExpectEndReportsTrailingBytes) {
  BinaryWriter w;
  w.put<uint32_t>(1);
  w.put<uint16_t>(2);
  const std::string record = w.finish_with_checksum();
  BinaryReader r(record, "rec");
  r.get<uint32_t>("first");
  const std::string msg = error_of([&] { r.expect_end(); });
  EXPECT_TRUE(contains(msg, "trailing")) << msg;
  EXPECT_TRUE(contains(msg, "2 unexpected")) << msg;
  r.get<uint16_t>("second");
  EXPECT_NO_THROW(r.expect_end());
}

class BinaryFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("bloch_binio_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

TEST_F(BinaryFiles, AtomicWriteCreatesReplacesAndLeavesNoTemp) {
  const std::string p = path("data.bin");
  const std::string first("first\0content", 13);
  write_file_atomically(p, first);
  EXPECT_EQ(read_file(p), first);
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));

  const std::string second(100000, 'x');  // longer: must not keep any old bytes
  write_file_atomically(p, second);
  EXPECT_EQ(read_file(p), second);
  write_file_atomically(p, "s");  // shorter: must not keep a tail of the old content
  EXPECT_EQ(read_file(p), "s");
  write_file_atomically(p, "");
  EXPECT_EQ(read_file(p), "");
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));
  // Only the target remains in the directory.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(BinaryFiles, RecordSurvivesFileRoundTrip) {
  BinaryWriter w;
  w.put_vector(std::vector<double>{1.5, -2.5});
  const std::string p = path("rec.bin");
  write_file_atomically(p, w.finish_with_checksum());
  const std::string bytes = read_file(p);
  BinaryReader r(bytes, p);
  EXPECT_EQ(r.get_vector<double>("v", 2), (std::vector<double>{1.5, -2.5}));
  r.expect_end();
}

TEST_F(BinaryFiles, MissingFilesAndDirectoriesThrow) {
  const std::string msg = error_of([&] { read_file(path("missing.bin")); });
  EXPECT_TRUE(contains(msg, "missing.bin")) << msg;
  EXPECT_THROW(write_file_atomically(path("no/such/dir/f.bin"), "x"), faiss::FaissException);
}

}  // namespace
}  // namespace bloch
