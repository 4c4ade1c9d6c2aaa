// greylight-fill: fills a store with N passed triplets and M auto-whitelist clients, for the
// large-database benchmarks (startup time, memory, throughput with 10 million triplets).
//
//   greylight-fill --dbdir DIR --triplets N [--clients M] [--store URI] [--seed S]
//                  [--age-days A]
//
// --age-days A makes every record last seen A to A+30 days ago: with A above --max-age
// (35 days) the whole database is expired, so the background expiry deletes while a
// benchmark runs.

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "store/open_store.h"

namespace {

constexpr size_t kBatch = 100000;

int Usage() {
  std::fputs(
      "usage: greylight-fill --dbdir DIR --triplets N [--clients M] [--store URI] [--seed S] "
      "[--age-days A]\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace greylight;
  store::StoreConfig config;
  config.exclusive = false;
  config.background_expiry = false;
  config.commit_interval = std::chrono::milliseconds(0);
  size_t triplets = 0, clients = 0;
  unsigned seed = 1;
  long long age_days = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string option = argv[i], value = argv[i + 1];
    if (option == "--dbdir")
      config.dbdir = value;
    else if (option == "--store")
      config.uri = value;
    else if (option == "--triplets")
      triplets = std::stoull(value);
    else if (option == "--clients")
      clients = std::stoull(value);
    else if (option == "--seed")
      seed = static_cast<unsigned>(std::stoul(value));
    else if (option == "--age-days")
      age_days = std::stoll(value);
    else
      return Usage();
  }
  if (argc % 2 == 0 || triplets == 0 || (config.dbdir.empty() && config.uri == "lmdb:"))
    return Usage();
  SystemClock clock;
  auto store = store::OpenStore(config, clock);
  if (!store.ok()) {
    std::fprintf(stderr, "greylight-fill: %s\n", store.status().message().c_str());
    return 3;
  }
  std::mt19937_64 random(seed);
  const long long now =
      std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count() -
      age_days * 86400;
  auto started = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, std::string>> batch;
  batch.reserve(kBatch);
  auto flush = [&](store::Table table) {
    if (Status status = (*store)->PutMany(table, batch); !status.ok()) {
      std::fprintf(stderr, "greylight-fill: %s\n", status.message().c_str());
      std::exit(3);
    }
    batch.clear();
  };
  for (size_t i = 0; i < triplets; ++i) {
    // Passed triplets seen within 30 days before `now`: with --age-days 0 live for max-age,
    // so nothing expires.
    long long last = now - static_cast<long long>(random() % (30 * 86400));
    long long first = last - 300 - static_cast<long long>(random() % 86400);
    uint64_t r = random();
    batch.emplace_back(
        fmt::format("{}.{}.{}.0/sender{}@domain{}.example/user{}@example.org", 10 + r % 200,
                    (r >> 8) % 256, (r >> 16) % 256, i, (r >> 24) % 5000, (r >> 40) % 20000),
        fmt::format("{},{}", first, last));
    if (batch.size() == kBatch) flush(store::Table::kTriplets);
  }
  if (!batch.empty()) flush(store::Table::kTriplets);
  for (size_t i = 0; i < clients; ++i) {
    uint64_t r = random();
    batch.emplace_back(
        fmt::format("{}.{}.{}.{}", 10 + r % 200, (r >> 8) % 256, (r >> 16) % 256, (r >> 24) % 256),
        fmt::format("{},{}", 1 + r % 20, now - static_cast<long long>((r >> 32) % 86400)));
    if (batch.size() == kBatch) flush(store::Table::kClients);
  }
  if (!batch.empty()) flush(store::Table::kClients);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("greylight-fill: %zu triplets and %zu clients written in %.1f s\n", triplets, clients,
              seconds);
  return 0;
}
