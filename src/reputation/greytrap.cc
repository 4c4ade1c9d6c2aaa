#include "reputation/greytrap.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "whitelist/whitelist.h"

namespace greylight::reputation {
namespace {

std::optional<long long> ParseSeconds(std::string_view text) {
  long long value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

}  // namespace

Greytraps::Greytraps(std::shared_ptr<const whitelist::Whitelists> lists)
    : lists_(std::move(lists)) {}

Greytraps::~Greytraps() = default;

Result<std::shared_ptr<const Greytraps>> Greytraps::Load(std::span<const std::string> files) {
  // The whitelist loader reads the files as recipient lists, so the syntax and matching
  // are exactly those of --whitelist-recipients. It only warns about a missing file
  // (postgrey's rule for whitelists); for traps that is an error, so check first.
  whitelist::WhitelistFiles whitelist_files;
  for (const std::string& path : files) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
      return Status::NotFound("can't open greytrap file " + path + ": " + std::strerror(errno));
    }
    whitelist_files.recipients.push_back({path, /*missing_ok=*/false});
  }
  auto lists = whitelist::Whitelists::Load(whitelist_files);
  if (!lists.ok()) return lists.status();
  if (!lists.value()->warnings().empty()) {
    return Status::NotFound(lists.value()->warnings().front());  // vanished since stat()
  }
  return std::shared_ptr<const Greytraps>(new Greytraps(std::move(lists).value()));
}

Result<std::shared_ptr<const Greytraps>> Greytraps::FromText(std::string_view source,
                                                             std::string_view text) {
  whitelist::WhitelistBuilder builder;
  builder.AddRecipientText(source, text);
  auto lists = builder.Build();
  if (!lists.ok()) return lists.status();
  return std::shared_ptr<const Greytraps>(new Greytraps(std::move(lists).value()));
}

std::shared_ptr<const Greytraps> Greytraps::Empty() {
  static const std::shared_ptr<const Greytraps> kEmpty(
      new Greytraps(whitelist::Whitelists::Empty()));
  return kEmpty;
}

std::optional<policy::WhitelistHit> Greytraps::Match(std::string_view recipient) const {
  return lists_->MatchRecipient(recipient);
}

size_t Greytraps::entry_count() const { return lists_->recipient_entry_count(); }

std::string EncodeTrap(const TrapRecord& record) {
  return std::to_string(ToUnixSeconds(record.until)) + "," +
         std::to_string(ToUnixSeconds(record.last_hit));
}

std::optional<TrapRecord> DecodeTrap(std::string_view value) {
  size_t comma = value.find(',');
  if (comma == std::string_view::npos) return std::nullopt;
  auto until = ParseSeconds(value.substr(0, comma));
  auto last_hit = ParseSeconds(value.substr(comma + 1));
  if (!until || !last_hit) return std::nullopt;
  return TrapRecord{FromUnixSeconds(*until), FromUnixSeconds(*last_hit)};
}

TrapRecord RecordTrapHit(const std::optional<TrapRecord>& prior, UnixTime now, Seconds ttl) {
  UnixTime until = now + ttl;
  if (prior) until = std::max(until, prior->until);
  return TrapRecord{until, now};
}

bool Trapped(const std::optional<TrapRecord>& record, UnixTime now) {
  return record.has_value() && now < record->until;
}

bool TrapExpired(const TrapRecord& record, UnixTime now) { return now >= record.until; }

policy::Transition TrappedTransition(const policy::PriorState& prior, const TrapRecord& trap,
                                     UnixTime now) {
  policy::Transition t;
  t.client_awl_pass = false;
  t.first = prior.triplet ? prior.triplet->first : now;
  t.last_was_successful = false;
  t.missing = std::max(trap.until - now, Seconds(1));
  return t;
}

}  // namespace greylight::reputation
