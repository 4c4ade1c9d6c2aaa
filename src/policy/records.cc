#include "policy/records.h"

#include <fmt/format.h>

#include <charconv>

namespace greylight::policy {
namespace {

// Parses "<a>,<b>[,<anything>]" with a and b decimal integers in 0..kMaxRecordField.
std::optional<std::pair<long long, long long>> ParsePair(std::string_view value,
                                                         bool allow_third_field) {
  long long a = 0, b = 0;
  const char* end = value.data() + value.size();
  auto [after_a, ec_a] = std::from_chars(value.data(), end, a);
  if (ec_a != std::errc() || after_a == value.data() || after_a == end || *after_a != ',' ||
      a < 0) {
    return std::nullopt;
  }
  const char* b_start = after_a + 1;
  auto [after_b, ec_b] = std::from_chars(b_start, end, b);
  if (ec_b != std::errc() || after_b == b_start || b < 0) return std::nullopt;
  if (a > kMaxRecordField || b > kMaxRecordField) return std::nullopt;
  if (after_b != end && !(allow_third_field && *after_b == ',')) return std::nullopt;
  return std::make_pair(a, b);
}

}  // namespace

std::string EncodeTriplet(const TripletRecord& record) {
  return fmt::format("{},{}", ToUnixSeconds(record.first), ToUnixSeconds(record.last));
}

std::optional<TripletRecord> DecodeTriplet(std::string_view value) {
  auto pair = ParsePair(value, /*allow_third_field=*/true);
  if (!pair) return std::nullopt;
  return TripletRecord{FromUnixSeconds(pair->first), FromUnixSeconds(pair->second)};
}

std::string EncodeClient(const ClientRecord& record) {
  return fmt::format("{},{}", record.count, ToUnixSeconds(record.last));
}

std::optional<ClientRecord> DecodeClient(std::string_view value) {
  auto pair = ParsePair(value, /*allow_third_field=*/false);
  if (!pair) return std::nullopt;
  return ClientRecord{pair->first, FromUnixSeconds(pair->second)};
}

std::string EncodeTrap(const TrapRecord& record) {
  return fmt::format("{},{}", ToUnixSeconds(record.until), ToUnixSeconds(record.last_hit));
}

std::optional<TrapRecord> DecodeTrap(std::string_view value) {
  auto pair = ParsePair(value, /*allow_third_field=*/false);
  if (!pair) return std::nullopt;
  return TrapRecord{FromUnixSeconds(pair->first), FromUnixSeconds(pair->second)};
}

std::string EncodeReply(const ReplyRecord& record) {
  return fmt::format("{},{}", record.count, ToUnixSeconds(record.last));
}

std::optional<ReplyRecord> DecodeReply(std::string_view value) {
  auto pair = ParsePair(value, /*allow_third_field=*/false);
  if (!pair) return std::nullopt;
  return ReplyRecord{pair->first, FromUnixSeconds(pair->second)};
}

}  // namespace greylight::policy
