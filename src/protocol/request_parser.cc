#include "protocol/request_parser.h"

#include <algorithm>
#include <cstdint>
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
  const bool may_hold_nul = std::memchr(bytes.data(), '\0', bytes.size()) != nullptr;
  while (!bytes.empty()) {
    const void* newline = std::memchr(bytes.data(), '\n', bytes.size());
    if (newline == nullptr) {
      // Checked before buffering, so a peer never makes us hold more than allowed.
      if (ParseError crossed = FirstLimitCrossed(partial_line_, bytes, false);
          crossed != ParseError::kNone) {
        return Fail(crossed);
      }
      partial_line_.append(bytes);
      return error_;
    }
    size_t length = static_cast<const char*>(newline) - bytes.data();
    std::string_view rest = bytes.substr(0, length);
    if (ParseError crossed = FirstLimitCrossed(partial_line_, rest, true);
        crossed != ParseError::kNone) {
      return Fail(crossed);
    }
    current_bytes_ += partial_line_.size() + length + 1;
    ParseError result;
    if (partial_line_.empty()) {
      result = ConsumeLine(rest, may_hold_nul, completed);
    } else {
      partial_line_.append(rest);
      result = ConsumeLine(partial_line_, /*may_hold_nul=*/true, completed);
      partial_line_.clear();
    }
    if (result != ParseError::kNone) return Fail(result);
    bytes.remove_prefix(length + 1);
  }
  return error_;
}

// Each limit is judged at the byte that crosses it, and the earlier crossing is the error,
// so the answer is the same however the input was split into reads. The line `head` + `tail`
// (without its LF, which counts towards the request when `complete`) is too long once its
// content without a final CR must exceed max_line_bytes: at byte max_line_bytes + 1 unless
// that byte is a CR, else at the byte after it. The request is too large at the byte that
// takes its count (every line's bytes, CR and LF included) over max_request_bytes.
ParseError RequestParser::FirstLimitCrossed(std::string_view head, std::string_view tail,
                                            bool complete) const {
  auto byte_at = [&](size_t i) { return i < head.size() ? head[i] : tail[i - head.size()]; };
  const size_t seen = head.size() + tail.size();
  const size_t counted = seen + (complete ? 1 : 0);
  size_t line_crossed_at = SIZE_MAX;  // 1-based positions within the line
  if (seen > limits_.max_line_bytes) {
    bool cr_at_limit = byte_at(limits_.max_line_bytes) == '\r';
    if (!cr_at_limit) {
      line_crossed_at = limits_.max_line_bytes + 1;
    } else if (seen > limits_.max_line_bytes + 1) {
      line_crossed_at = limits_.max_line_bytes + 2;
    }
  }
  size_t request_crossed_at = SIZE_MAX;
  if (current_bytes_ + counted > limits_.max_request_bytes) {
    request_crossed_at = limits_.max_request_bytes - current_bytes_ + 1;
  }
  if (line_crossed_at == SIZE_MAX && request_crossed_at == SIZE_MAX) return ParseError::kNone;
  return line_crossed_at <= request_crossed_at ? ParseError::kLineTooLong
                                               : ParseError::kRequestTooLarge;
}

void RequestParser::Recycle(PolicyRequest spent) {
  if (current_.attribute_count() > 0 || spent.buffer_bytes() > kMaxRecycledBytes) return;
  spent.Clear();
  current_ = std::move(spent);
}

ParseError RequestParser::ConsumeLine(std::string_view line, bool may_hold_nul,
                                      std::vector<PolicyRequest>& completed) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

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

  if (current_.attribute_count() >= limits_.max_attributes) return ParseError::kTooManyAttributes;

  size_t equals = line.find('=');
  if (equals == 0 || equals == std::string_view::npos ||
      (may_hold_nul && line.find('\0') != std::string_view::npos)) {
    offending_line_ = std::string(line.substr(0, 100));
    return ParseError::kMalformedLine;
  }
  current_.AddLine(line, equals, kPostgreyFieldLimit);
  return ParseError::kNone;
}

}  // namespace greylight::protocol
