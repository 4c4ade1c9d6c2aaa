#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/policy_request.h"

namespace greylight::protocol {

// Bounds on what one peer may make the parser hold. Postfix's largest requests (with TLS
// client certificate attributes) stay well under these.
struct ParserLimits {
  static constexpr size_t kDefaultMaxLineBytes = 8 * 1024;
  static constexpr size_t kDefaultMaxAttributes = 128;
  static constexpr size_t kDefaultMaxRequestBytes = 64 * 1024;

  size_t max_line_bytes = kDefaultMaxLineBytes;        // one name=value line, without LF
  size_t max_attributes = kDefaultMaxAttributes;       // attribute lines in one request
  size_t max_request_bytes = kDefaultMaxRequestBytes;  // all lines of one request
};

// postgrey truncates every attribute name and value to this many bytes; so do we, so the
// stored keys stay identical for absurdly long input.
inline constexpr size_t kPostgreyFieldLimit = 512;

enum class ParseError {
  kNone,
  kLineTooLong,
  kTooManyAttributes,
  kRequestTooLarge,
  kMalformedLine,       // no '=', empty name, or a NUL byte
  kUnknownRequestType,  // `request` missing or not smtpd_access_policy
};

// Describes an error for the one warning logged before closing the connection.
std::string_view Describe(ParseError error);

// A sans-I/O parser for the policy delegation protocol: bytes in, complete requests out.
// Accepts LF and CRLF line ends and pipelined requests. After the first error it stays in
// the error state (the connection must be closed without a reply). Not thread-safe.
class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  // Consumes `bytes`; appends each request completed by them to `completed` in order.
  // Returns the first error met; requests completed before it are still appended.
  ParseError Feed(std::string_view bytes, std::vector<PolicyRequest>& completed);

  // Hands back a request the caller has finished with: the next request is built in its
  // buffers, so a persistent connection parses without allocating. Dropped when a request
  // has already been started, or when its buffers outgrew kMaxRecycledBytes (an idle
  // connection keeps no more than a typical request's memory).
  void Recycle(PolicyRequest spent);
  static constexpr size_t kMaxRecycledBytes = 8 * 1024;

  ParseError error() const { return error_; }
  // The first bytes of the line that caused a kMalformedLine error, for the log.
  const std::string& offending_line() const { return offending_line_; }
  // The bytes held for the request being parsed (its buffers), for tests.
  size_t current_buffer_bytes() const { return current_.buffer_bytes(); }
  // True while a request has been started but not finished (bytes are buffered).
  bool in_request() const { return !partial_line_.empty() || current_.attribute_count() > 0; }

 private:
  // `may_hold_nul` false: the line is known to hold no NUL byte (its whole read was looked
  // at once, instead of every line on its own).
  ParseError ConsumeLine(std::string_view line, bool may_hold_nul,
                         std::vector<PolicyRequest>& completed);
  ParseError FirstLimitCrossed(std::string_view head, std::string_view tail, bool complete) const;
  ParseError Fail(ParseError error) { return error_ = error; }

  ParserLimits limits_;
  ParseError error_ = ParseError::kNone;
  std::string partial_line_;
  std::string offending_line_;
  PolicyRequest current_;
  size_t current_bytes_ = 0;  // lines of the current request, CR and LF included
};

}  // namespace greylight::protocol
