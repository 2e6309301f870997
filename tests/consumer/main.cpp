// Links the installed client and makes one call to an address where nothing listens: the call
// must come back as a typed UNAVAILABLE status (no retry, short deadline).
#include <bloch/Client.h>

#include <cstdio>

int main(int argc, char** argv) {
  bloch::ClientOptions options;
  options.address = argc > 1 ? argv[1] : "127.0.0.1:1";
  options.max_attempts = 1;
  options.deadline = std::chrono::seconds(5);
  bloch::Client client(options);
  std::vector<bloch::v1::CollectionInfo> collections;
  const grpc::Status status = client.list_collections(&collections);
  std::printf("status %d: %s\n", int(status.error_code()), status.error_message().c_str());
  return status.error_code() == grpc::StatusCode::UNAVAILABLE ? 0 : 1;
}
