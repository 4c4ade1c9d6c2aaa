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
  // SRS decoding (--spf-keys, domain modes): an original sender is "local@domain", both
  // parts non-empty and the domain free of '@' and '='; unchanged otherwise.
  if (auto original = greylight::policy::SrsOriginalSender(sender)) {
    size_t original_at = original->rfind('@');
    if (original_at == std::string::npos || original_at == 0 ||
        original_at + 1 == original->size() ||
        original->find_first_of("@=", original_at + 1) != std::string::npos) {
      abort();
    }
  } else if (greylight::policy::NormaliseSender(sender, true) != normalised) {
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
