#include "policy/reason.h"

namespace greylight::policy {

Verdict VerdictOf(Reason reason) {
  switch (reason) {
    case Reason::kGreytrap:
    case Reason::kNew:
    case Reason::kAbandoned:
    case Reason::kEarlyRetry:
      return Verdict::kGreylist;
    case Reason::kClientWhitelist:
    case Reason::kRecipientWhitelist:
    case Reason::kDnswl:
    case Reason::kNotListed:
    case Reason::kClientAwl:
    case Reason::kReply:
    case Reason::kPassFirst:
    case Reason::kPassed:
      return Verdict::kPass;
    case Reason::kMissingAttribute:
    case Reason::kBadClientAddress:
    case Reason::kBadTestTime:
    case Reason::kStoreError:
      return Verdict::kUndecided;
    case Reason::kOutbound:
    case Reason::kNotRecorded:
      return Verdict::kOutbound;
  }
  return Verdict::kUndecided;
}

std::string_view ActionWord(Reason reason) {
  switch (VerdictOf(reason)) {
    case Verdict::kGreylist:
      return "greylist";
    case Verdict::kPass:
      return "pass";
    case Verdict::kUndecided:
      return "dunno";
    case Verdict::kOutbound:
      return reason == Reason::kOutbound ? "record" : "dunno";
  }
  return "dunno";
}

std::string_view ReasonWord(Reason reason) {
  switch (reason) {
    case Reason::kMissingAttribute:
      return "attribute missing";
    case Reason::kBadClientAddress:
      return "bad client address";
    case Reason::kBadTestTime:
      return "bad policy_test_time";
    case Reason::kClientWhitelist:
      return "client whitelist";
    case Reason::kRecipientWhitelist:
      return "recipient whitelist";
    case Reason::kDnswl:
      return "dnswl";
    case Reason::kNotListed:
      return "not listed";
    case Reason::kGreytrap:
      return "greytrap";
    case Reason::kClientAwl:
      return "client AWL";
    case Reason::kReply:
      return "reply";
    case Reason::kNew:
    case Reason::kAbandoned:
      return "new";
    case Reason::kEarlyRetry:
      return "early-retry";
    case Reason::kPassFirst:
    case Reason::kPassed:
      return "triplet found";
    case Reason::kOutbound:
      return "outbound";
    case Reason::kNotRecorded:
      return "not recorded";
    case Reason::kStoreError:
      return "store error";
  }
  return "";
}

}  // namespace greylight::policy
