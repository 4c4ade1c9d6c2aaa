#include "policy/reply_key.h"

#include "util/ascii.h"
#include "util/sha1.h"

namespace greylight::policy {

std::string ReplyKey(std::string_view remote, std::string_view local, const KeyOptions& options) {
  std::string key;
  key.reserve(remote.size() + local.size() + 1);
  AppendNormalisedSender(key, remote);
  key.push_back('/');
  key.append(local);
  AsciiLowerInPlace(key);
  if (options.privacy) return Sha1Hex(key);
  return key;
}

}  // namespace greylight::policy
