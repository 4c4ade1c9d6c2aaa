// libFuzzer target: the record codec (postgrey's triplet and client values, trap entries). Whatever
// decodes must re-encode to a value that decodes to the same record.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "policy/records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view value(reinterpret_cast<const char*>(data), size);
  if (auto triplet = greylight::policy::DecodeTriplet(value)) {
    auto again = greylight::policy::DecodeTriplet(greylight::policy::EncodeTriplet(*triplet));
    if (!again || !(*again == *triplet)) abort();
  }
  if (auto client = greylight::policy::DecodeClient(value)) {
    auto again = greylight::policy::DecodeClient(greylight::policy::EncodeClient(*client));
    if (!again || !(*again == *client)) abort();
  }
  if (auto trap = greylight::policy::DecodeTrap(value)) {
    auto again = greylight::policy::DecodeTrap(greylight::policy::EncodeTrap(*trap));
    if (!again || !(*again == *trap)) abort();
  }
  return 0;
}
