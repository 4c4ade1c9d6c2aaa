#pragma once

#include <cstddef>
#include <string_view>

namespace greylight::policy {

// Why a request got its answer, in the order the decision's steps run: requests that cannot
// be decided, the whitelists, the DNS lists, then the greylisting rules of policy::Decide;
// then the answers of an outbound listener (reply tracking), which greylists nothing.
// Logs, metrics, `greylight explain` and the tool's statistics name reasons only through
// this enum and the words below.
enum class Reason {
  kMissingAttribute,    // a required attribute was not sent: DUNNO
  kBadClientAddress,    // client_address is not an IP address: DUNNO
  kBadTestTime,         // policy_test_time is not a number: DUNNO
  kClientWhitelist,     // the client is on a whitelist
  kRecipientWhitelist,  // the recipient is on a whitelist
  kDnswl,               // a --dnswl zone lists the client
  kNotListed,           // --greylist-only-listed and no --dnsbl zone lists the client
  kGreytrap,            // the client is on the greytrap list (this request may have put it there)
  kClientAwl,           // the client is auto-whitelisted
  kReply,               // a local user wrote to the sender within max-age: a reply
  kNew,                 // a triplet never seen (or seen for the first time in this second)
  kAbandoned,           // a pending triplet older than the retry window: starts over
  kEarlyRetry,          // a pending triplet retried before the delay is over
  kPassFirst,           // a pending triplet retried after the delay: its first delivery
  kPassed,              // a triplet that passed before
  kOutbound,            // outbound listener: the (recipient, sender) pair was recorded
  kNotRecorded,         // outbound listener: null sender or no recipient, nothing to record
  kStoreError,          // the store failed: --store-error-action
};
inline constexpr size_t kReasonCount = static_cast<size_t>(Reason::kStoreError) + 1;

// What the answer does with the mail. kOutbound: a request of an outbound listener, answered
// DUNNO after recording (or not) a reply pair.
enum class Verdict { kGreylist, kPass, kUndecided, kOutbound };
Verdict VerdictOf(Reason reason);

// postgrey's words in the decision log line "action=<action>, reason=<reason>": "greylist",
// "pass", "dunno" or "record" (kOutbound); "new" (for kAbandoned too, as postgrey logs it),
// "early-retry", "triplet found", "client AWL", "reply", "outbound", ...
std::string_view ActionWord(Reason reason);
std::string_view ReasonWord(Reason reason);

}  // namespace greylight::policy
