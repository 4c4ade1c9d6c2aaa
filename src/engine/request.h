#pragma once

#include <optional>
#include <string_view>

#include "policy/ip_address.h"
#include "policy/reason.h"
#include "protocol/policy_request.h"
#include "util/clock.h"

namespace greylight::engine {

// One policy request as the decision reads it: every attribute the engine and its logs use,
// read from the wire request in one pass, the client address parsed once. Nothing below
// the engine's entry asks attributes by name. The views point into the PolicyRequest it was
// read from, which must outlive it.
struct Request {
  policy::IpAddress client;         // client_address, parsed
  std::string_view client_address;  // as sent
  std::string_view client_name;     // "unknown" when Postfix could not verify it
  std::string_view sender;          // empty for the null sender
  std::string_view recipient;
  std::string_view helo_name;                // HELO/EHLO argument; empty when not sent (SPF of <>)
  std::optional<std::string_view> queue_id;  // absent from old clients; empty before a queue id
  std::optional<std::string_view> instance;  // one per delivery; absent from old clients
  // Postfix >= 2.3 sends etrn_domain (usually empty) with every request; postgrey then puts
  // "4.2.0 " before a greylist text that does not start with a digit.
  bool etrn_domain_sent = false;
  UnixTime now;       // the decision's time: the real time, or policy_test_time if allowed
  UnixTime real_now;  // the real time, for the X-Greylist header date
};

// Why a request cannot be decided (it is answered DUNNO with a warning): the reason
// (kMissingAttribute, kBadClientAddress or kBadTestTime) and what was wrong (the missing
// attribute's name, or the value as sent).
struct Unreadable {
  policy::Reason reason = policy::Reason::kMissingAttribute;
  std::string_view detail;
};

// Reads `wire` received at `real_now`. `allow_test_time` honours policy_test_time
// (--allow-policy-test-time). A repeated attribute counts with its last value, as
// PolicyRequest::Get.
struct ReadResult {
  std::optional<Request> request;  // set when the request can be decided
  Unreadable unreadable;           // otherwise
};
ReadResult ReadRequest(const protocol::PolicyRequest& wire, UnixTime real_now,
                       bool allow_test_time);

}  // namespace greylight::engine
