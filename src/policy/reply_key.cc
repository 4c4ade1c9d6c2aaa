#include "policy/reply_key.h"

#include "util/ascii.h"
#include "util/sha1.h"

namespace greylight::policy {

void AssignReplyKey(std::string& key, std::string_view remote, std::string_view local,
                    const KeyOptions& options) {
  key.clear();
  AppendNormalisedSender(key, remote);
  key.push_back('/');
  key.append(local);
  AsciiLowerInPlace(key);
  if (options.privacy) key = Sha1Hex(key);
}

std::string ReplyKey(std::string_view remote, std::string_view local, const KeyOptions& options) {
  std::string key;
  key.reserve(remote.size() + local.size() + 1);
  AssignReplyKey(key, remote, local, options);
  return key;
}

}  // namespace greylight::policy
