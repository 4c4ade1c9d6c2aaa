#include "reputation/greytrap.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "whitelist/whitelist.h"

namespace greylight::reputation {
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

}  // namespace greylight::reputation
