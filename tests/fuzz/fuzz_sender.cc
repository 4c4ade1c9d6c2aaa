// libFuzzer target: sender normalisation and triplet keys on arbitrary bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "policy/triplet_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view sender(reinterpret_cast<const char*>(data), size);
  std::string normalised = greylight::policy::NormaliseSender(sender);
  // The domain part (from the first '@') is never modified.
  size_t at = sender.find('@');
  if (at != std::string_view::npos) {
    std::string_view domain = sender.substr(at);
    if (normalised.size() < domain.size() ||
        std::string_view(normalised).substr(normalised.size() - domain.size()) != domain) {
      abort();
    }
  } else if (normalised != sender) {
    abort();
  }
  auto client = greylight::policy::IpAddress::Parse("192.0.2.1");
  greylight::policy::KeyOptions options;
  std::string key = greylight::policy::TripletKey(*client, sender, sender, options);
  for (char c : key) {
    if (c >= 'A' && c <= 'Z') abort();  // keys are lowercase
  }
  options.privacy = true;
  if (greylight::policy::TripletKey(*client, sender, sender, options).size() != 40) abort();
  return 0;
}
