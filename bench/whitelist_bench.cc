// Per-lookup cost of Whitelists::MatchClient (client name + address, the check every
// request makes) for an empty list and generated lists of 10 and 10,000 entries: a mix
// of host-name suffixes, IPv4 and IPv6 networks of many prefix lengths, and 0, 1 or 10
// regexes (the benchmark's second argument; real lists hold few regexes, and each one is
// tried on every request that no earlier entry whitelisted, so they are shown apart).
// Also postgrey's shipped list, when installed.
//
//   greylight-whitelist-bench [--benchmark_filter=...]

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "whitelist/whitelist.h"

namespace greylight::whitelist {
namespace {

using policy::IpAddress;

constexpr std::string_view kPostgreyClients = "/etc/postgrey/whitelist_clients";
constexpr std::string_view kMissName = "mail-out42.customer.example-isp.net";

// A deterministic list of `count` client entries, the first `regexes` of them regexes.
std::string GenerateClientList(int count, int regexes) {
  std::mt19937 random(42);
  auto octet = [&] { return static_cast<unsigned>(random() % 256); };
  auto group = [&] { return static_cast<unsigned>(random() % 65536); };
  std::string text = "# generated benchmark list\n";
  for (int i = 0; i < count; ++i) {
    char line[128];
    int kind = i < regexes ? -1 : static_cast<int>(random() % 10);
    if (kind < 0) {
      std::snprintf(line, sizeof(line), "/^mail\\d+\\.bulk%d\\.example$/", i);
    } else if (kind < 5) {  // host-name suffixes of 2 or 3 labels
      std::snprintf(line, sizeof(line), "%sdomain%d.example", random() % 2 ? "out." : "", i);
    } else if (kind < 7) {  // IPv4 hosts and networks /12 - /32
      int prefix = 12 + static_cast<int>(random() % 21);
      std::snprintf(line, sizeof(line), "%u.%u.%u.%u/%d", 1 + octet() % 223, octet(), octet(),
                    octet(), prefix);
    } else if (kind < 8) {  // a.b.c
      std::snprintf(line, sizeof(line), "%u.%u.%u", 1 + octet() % 223, octet(), octet());
    } else {  // IPv6 /32 - /128
      int prefix = 32 + static_cast<int>(random() % 97);
      std::snprintf(line, sizeof(line), "2a0%x:%x:%x:%x::%x/%d", group() % 16, group(), group(),
                    group(), group(), prefix);
    }
    text += line;
    text += "   # why it is here\n";
  }
  return text;
}

std::shared_ptr<const Whitelists> BuildList(const benchmark::State& state) {
  WhitelistBuilder builder;
  builder.AddClientText("bench", GenerateClientList(static_cast<int>(state.range(0)),
                                                    static_cast<int>(state.range(1))));
  auto lists = builder.Build();
  if (!lists.ok()) {
    std::fprintf(stderr, "generated list does not load: %s\n", lists.status().message().c_str());
    std::exit(1);
  }
  return lists.value();
}

void RunLookup(benchmark::State& state, const Whitelists& lists, std::string_view name,
               std::string_view address_text) {
  IpAddress address = *IpAddress::Parse(address_text);
  for (auto _ : state) {
    benchmark::DoNotOptimize(lists.MatchClient(name, address));
  }
  state.counters["entries"] = static_cast<double>(lists.client_entry_count());
  state.counters["whitelisted"] = lists.MatchClient(name, address) ? 1 : 0;
}

// The common case: a client in no list, so every structure is consulted.
void BM_MissIpv4(benchmark::State& state) {
  RunLookup(state, *BuildList(state), kMissName, "192.0.2.77");
}
void BM_MissIpv6(benchmark::State& state) {
  RunLookup(state, *BuildList(state), kMissName, "2001:db8:4:5::77");
}
// A client without a verified name, as Postfix reports it.
void BM_MissUnknownName(benchmark::State& state) {
  RunLookup(state, *BuildList(state), "unknown", "192.0.2.77");
}

// Whitelisted by name: a host under the last generated suffix entry.
void BM_HitName(benchmark::State& state) {
  auto lists = BuildList(state);
  IpAddress address = *IpAddress::Parse("192.0.2.77");
  std::string name;
  for (int i = static_cast<int>(state.range(0)) - 1; i >= 0 && name.empty(); --i) {
    std::string candidate = "mx1.mail.out.domain" + std::to_string(i) + ".example";
    if (lists->MatchClient(candidate, address)) name = candidate;
  }
  if (name.empty()) {
    state.SkipWithError("no suffix entry generated");
    return;
  }
  RunLookup(state, *lists, name, "192.0.2.77");
}

// Whitelisted by address: inside the last generated a.b.c (/24) entry.
void BM_HitNetwork(benchmark::State& state) {
  std::string text =
      GenerateClientList(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  std::string address;
  for (size_t start = 0, end; start < text.size(); start = end + 1) {
    end = text.find('\n', start);
    std::string entry = text.substr(start, text.find(' ', start) - start);
    if (std::count(entry.begin(), entry.end(), '.') == 2 &&
        entry.find_first_not_of("0123456789.") == std::string::npos) {
      address = entry + ".9";
    }
  }
  if (address.empty()) {
    state.SkipWithError("no a.b.c entry generated");
    return;
  }
  RunLookup(state, *BuildList(state), "unknown", address);
}

// postgrey's shipped list (164 entries, 34 of them regexes), a client in no list.
void BM_PostgreyShippedListMiss(benchmark::State& state) {
  if (!std::filesystem::exists(kPostgreyClients)) {
    state.SkipWithError("postgrey's whitelist_clients is not installed");
    return;
  }
  auto lists = Whitelists::Load({{FileFromPath(std::string(kPostgreyClients))}, {}});
  if (!lists.ok()) {
    state.SkipWithError(lists.status().message().c_str());
    return;
  }
  RunLookup(state, *lists.value(), kMissName, "192.0.2.77");
}

// {entries, regexes among them}
BENCHMARK(BM_MissIpv4)
    ->Args({0, 0})
    ->Args({10, 0})
    ->Args({10, 1})
    ->Args({10000, 0})
    ->Args({10000, 10});
BENCHMARK(BM_MissIpv6)
    ->Args({0, 0})
    ->Args({10, 0})
    ->Args({10, 1})
    ->Args({10000, 0})
    ->Args({10000, 10});
BENCHMARK(BM_MissUnknownName)->Args({0, 0})->Args({10, 1})->Args({10000, 10});
BENCHMARK(BM_HitName)->Args({10000, 10});
BENCHMARK(BM_HitNetwork)->Args({10000, 10});
BENCHMARK(BM_PostgreyShippedListMiss);

}  // namespace
}  // namespace greylight::whitelist

BENCHMARK_MAIN();
