// libFuzzer target: the whitelist file loader. Arbitrary file contents, as client and as
// recipient lists, must load or fail with a message naming the file and line; a list that
// loads must answer lookups (with names and addresses taken from the input) without
// crashing.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "policy/ip_address.h"
#include "whitelist/whitelist.h"

using greylight::policy::IpAddress;
using greylight::whitelist::WhitelistBuilder;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  WhitelistBuilder builder;
  builder.AddClientText("fuzz", text);
  builder.AddRecipientText("fuzz", text);
  auto lists = builder.Build();
  if (!lists.ok()) {
    if (lists.status().message().rfind("fuzz", 0) != 0) abort();  // errors name the file
    return 0;
  }
  const IpAddress v4 = *IpAddress::Parse("192.0.2.1");
  const IpAddress v6 = *IpAddress::Parse("2001:db8::1");
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, end == std::string_view::npos ? end : end - start);
    (*lists)->MatchClient(line, v4);
    (*lists)->MatchClient(line, v6);
    (*lists)->MatchRecipient(line);
    if (auto address = IpAddress::Parse(line)) (*lists)->MatchClient("unknown", *address);
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return 0;
}
