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
    case Reason::kPassFirst:
    case Reason::kPassed:
      return Verdict::kPass;
    case Reason::kMissingAttribute:
    case Reason::kBadClientAddress:
    case Reason::kBadTestTime:
    case Reason::kStoreError:
      return Verdict::kUndecided;
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
    case Reason::kNew:
    case Reason::kAbandoned:
      return "new";
    case Reason::kEarlyRetry:
      return "early-retry";
    case Reason::kPassFirst:
    case Reason::kPassed:
      return "triplet found";
    case Reason::kStoreError:
      return "store error";
  }
  return "";
}

}  // namespace greylight::policy
