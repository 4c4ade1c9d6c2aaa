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
// This file holds the trap address lists and the pure rules; the records live in the
// Store (proposed table "traps": key = ClientKey, value = EncodeTrap()).

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/greylist_state.h"
#include "policy/whitelist_matcher.h"
#include "util/clock.h"
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
  static constexpr Seconds kDefaultTtl{86400};

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

// One trap-list record.
struct TrapRecord {
  UnixTime until;     // trapped while now < until
  UnixTime last_hit;  // the last request to a trap address
  friend bool operator==(const TrapRecord&, const TrapRecord&) = default;
};

// The store value "<until>,<last_hit>" in Unix seconds, like postgrey's records.
std::string EncodeTrap(const TrapRecord& record);
// nullopt for anything but two non-negative decimal integers separated by one comma.
std::optional<TrapRecord> DecodeTrap(std::string_view value);

// The record after a request from the client to a trap address at `now`: trapped until
// max(prior until, now + ttl), so a hit never shortens a trap.
TrapRecord RecordTrapHit(const std::optional<TrapRecord>& prior, UnixTime now, Seconds ttl);

// True while the client is on the trap list. An absent record is not trapped.
bool Trapped(const std::optional<TrapRecord>& record, UnixTime now);

// True once the record may be deleted by the background expiry (it no longer traps).
bool TrapExpired(const TrapRecord& record, UnixTime now);

// The state transition for a request from a trapped client (Trapped() is true): always
// greylisted, with `missing` = the time left on the trap; nothing is written (no triplet
// is created or advanced, the client auto-whitelist is neither honoured nor counted), so
// once the trap expires the client starts greylisting from scratch for new triplets.
// `prior` supplies `first` and `last_was_successful` for the log line only.
// REQUIRES: Trapped(trap, now).
policy::Transition TrappedTransition(const policy::PriorState& prior, const TrapRecord& trap,
                                     UnixTime now);

}  // namespace greylight::reputation
