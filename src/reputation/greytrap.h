#pragma once

// Greytraps: recipient addresses no legitimate sender writes to (harvested, never
// published, or long dead). A client that sends to one is put on a trap list for a while
// (--greytrap-ttl); while it is there every request from it is greylisted, including
// triplets that already passed, and it neither uses nor earns the client auto-whitelist.
//
// The trap list is keyed by the client's own address (policy::ClientKey: the unmasked
// address, SHA-1 hex with --privacy), never by its lookup-by group: with domain grouping a
// single message sent through a big provider to a trap address would otherwise stop all of
// that provider's mail. Whitelisted clients should be exempted by the caller (check the
// client whitelist first), and DNSWL-listed ones too (docs/tuning.md).
//
// This file holds the trap address lists. The rules are part of policy::Decide (trap_hit,
// PriorState::trap) and the records live in the Store's table "traps" (key = ClientKey
// with lookup-by-host, value = policy::EncodeTrap()).

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/whitelist_matcher.h"
#include "util/status.h"

namespace greylight::whitelist {
class Whitelists;
}

namespace greylight::reputation {

// The trap addresses, in the syntax of postgrey's recipient whitelist files (one entry a
// line: "user@domain", "user@", "domain" for the domain and its subdomains, "/regex/",
// "#" comments), matched by the same code. Immutable; safe to share between threads.
class Greytraps {
 public:
  // Reads `files` (--greytrap-recipients, repeatable). Unlike a whitelist, a missing file
  // is an error: a trap list that silently went empty would be a mistake nobody sees.
  // Errors name the file and line as the whitelist loader does.
  static Result<std::shared_ptr<const Greytraps>> Load(std::span<const std::string> files);
  // From text, for tests: `source` names the text in hits and errors.
  static Result<std::shared_ptr<const Greytraps>> FromText(std::string_view source,
                                                           std::string_view text);
  // No traps: matches nothing.
  static std::shared_ptr<const Greytraps> Empty();

  // The trap entry `recipient` hits, if any (file:line and the entry, for the log line).
  std::optional<policy::WhitelistHit> Match(std::string_view recipient) const;
  size_t entry_count() const;

  ~Greytraps();

 private:
  explicit Greytraps(std::shared_ptr<const whitelist::Whitelists> lists);
  std::shared_ptr<const whitelist::Whitelists> lists_;
};

}  // namespace greylight::reputation
