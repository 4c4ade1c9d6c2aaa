// libFuzzer target: the policy request parser must never crash, must stop at the first
// error, and must give the same requests whichever way the bytes are split.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "protocol/request_parser.h"

using greylight::protocol::ParseError;
using greylight::protocol::ParserLimits;
using greylight::protocol::PolicyRequest;
using greylight::protocol::RequestParser;

namespace {

struct Outcome {
  ParseError error;
  std::vector<PolicyRequest> requests;
};

Outcome ParseInChunks(std::string_view input, size_t chunk, const ParserLimits& limits) {
  RequestParser parser(limits);
  Outcome outcome{ParseError::kNone, {}};
  for (size_t at = 0; at < input.size() && outcome.error == ParseError::kNone; at += chunk) {
    outcome.error = parser.Feed(input.substr(at, chunk), outcome.requests);
  }
  return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  ParserLimits limits;
  limits.max_line_bytes = 512;
  limits.max_attributes = 16;
  limits.max_request_bytes = 2048;
  size_t chunk = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  Outcome whole = ParseInChunks(input, input.size() + 1, limits);
  Outcome split = ParseInChunks(input, chunk, limits);
  if (whole.error != split.error || whole.requests.size() != split.requests.size()) abort();
  for (size_t i = 0; i < whole.requests.size(); ++i) {
    const PolicyRequest& a = whole.requests[i];
    const PolicyRequest& b = split.requests[i];
    if (a.GetOr("request") != "smtpd_access_policy") abort();
    if (a.attribute_count() != b.attribute_count()) abort();
    for (std::string_view name : {"sender", "recipient", "client_address", "instance"}) {
      if (a.Get(name) != b.Get(name)) abort();
    }
  }
  return 0;
}
