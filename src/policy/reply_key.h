#pragma once

#include <string>
#include <string_view>

#include "policy/triplet_key.h"

namespace greylight::policy {

// The reply-tracking key of the pair (remote address, local user): lowercase
// "<remote>/<local>", or its SHA-1 hex with options.privacy. The remote address is
// normalised as a triplet's sender (NormaliseSender: BATV tag, "+ext", digit runs), because
// it comes back as the sender of the reply; the local user is kept as a triplet's
// recipient is (lowercased only), because the reply is addressed to it.
//
// An outbound request (local user writes to a remote address) records
// ReplyKey(recipient, sender); an inbound request looks up ReplyKey(sender, recipient), so
// the reply's sender and recipient find the record of the message it answers.
// REQUIRES: `remote` and `local` are not empty (the null sender neither records nor
// finds a reply).
std::string ReplyKey(std::string_view remote, std::string_view local, const KeyOptions& options);
// ReplyKey into `key`, whose buffer is reused (the engine builds keys on every request).
void AssignReplyKey(std::string& key, std::string_view remote, std::string_view local,
                    const KeyOptions& options);

}  // namespace greylight::policy
