#include "protocol/request_parser.h"

#include <algorithm>
#include <cstring>

namespace greylight::protocol {

std::string_view Describe(ParseError error) {
  switch (error) {
    case ParseError::kNone:
      return "no error";
    case ParseError::kLineTooLong:
      return "line too long";
    case ParseError::kTooManyAttributes:
      return "too many attributes";
    case ParseError::kRequestTooLarge:
      return "request too large";
    case ParseError::kMalformedLine:
      return "malformed line";
    case ParseError::kUnknownRequestType:
      return "unrecognized request type";
  }
  return "unknown error";
}

ParseError RequestParser::Feed(std::string_view bytes, std::vector<PolicyRequest>& completed) {
  if (error_ != ParseError::kNone) return error_;
  while (!bytes.empty()) {
    const void* newline = std::memchr(bytes.data(), '\n', bytes.size());
    if (newline == nullptr) {
      // Check the limits before buffering, so a peer never makes us hold more than allowed.
      if (partial_line_.size() + bytes.size() > limits_.max_line_bytes + 1) {
        return Fail(ParseError::kLineTooLong);
      }
      if (current_bytes_ + partial_line_.size() + bytes.size() > limits_.max_request_bytes) {
        return Fail(ParseError::kRequestTooLarge);
      }
      partial_line_.append(bytes);
      return error_;
    }
    size_t length = static_cast<const char*>(newline) - bytes.data();
    ParseError result;
    if (partial_line_.empty()) {
      result = ConsumeLine(bytes.substr(0, length), completed);
    } else {
      partial_line_.append(bytes.substr(0, length));
      result = ConsumeLine(partial_line_, completed);
      partial_line_.clear();
    }
    if (result != ParseError::kNone) return Fail(result);
    bytes.remove_prefix(length + 1);
  }
  return error_;
}

void RequestParser::Recycle(PolicyRequest spent) {
  if (current_.attribute_count() > 0 || spent.buffer_bytes() > kMaxRecycledBytes) return;
  spent.Clear();
  current_ = std::move(spent);
}

ParseError RequestParser::ConsumeLine(std::string_view line,
                                      std::vector<PolicyRequest>& completed) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > limits_.max_line_bytes) return ParseError::kLineTooLong;

  if (line.empty()) {
    if (current_.GetOr(attr::kRequest) != kAccessPolicyRequest) {
      offending_line_ = std::string(current_.GetOr(attr::kRequest).substr(0, 100));
      return ParseError::kUnknownRequestType;
    }
    completed.push_back(std::move(current_));
    current_ = PolicyRequest();
    current_bytes_ = 0;
    return ParseError::kNone;
  }

  current_bytes_ += line.size() + 1;
  if (current_bytes_ > limits_.max_request_bytes) return ParseError::kRequestTooLarge;
  if (current_.attribute_count() >= limits_.max_attributes) return ParseError::kTooManyAttributes;

  size_t equals = line.find('=');
  if (equals == 0 || equals == std::string_view::npos ||
      line.find('\0') != std::string_view::npos) {
    offending_line_ = std::string(line.substr(0, 100));
    return ParseError::kMalformedLine;
  }
  current_.AddLine(line, equals, kPostgreyFieldLimit);
  return ParseError::kNone;
}

}  // namespace greylight::protocol
