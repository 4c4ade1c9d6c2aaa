#pragma once

#include <optional>

#include "policy/reason.h"
#include "policy/records.h"
#include "util/clock.h"

namespace greylight::policy {

// The timing rules of greylisting, fixed for the life of a store.
struct GreylistTiming {
  static constexpr Seconds kDefaultDelay{300};
  static constexpr Seconds kDefaultMaxAge{35 * 86400};
  static constexpr Seconds kDefaultRetryWindow{2 * 86400};
  static constexpr int kDefaultAwlThreshold = 5;
  // postgrey counts at most one success per client per hour toward the auto-whitelist.
  static constexpr Seconds kAwlCountInterval{3600};
  static constexpr Seconds kDefaultTrapTtl{86400};
  // A triplet seen again within this time of its last sighting is not written when it stays
  // passed, or stays pending, and keeps its first sighting: only its expiry (counted from
  // the last sighting) would move, by less than this. So a triplet is written at most once
  // a minute unless it passes or starts over, and a record may expire up to this much
  // earlier than postgrey's (allowed by the compat spec for <= 60 s;
  // docs/migrating-from-postgrey.md).
  static constexpr Seconds kLastSeenRefresh{60};

  Seconds delay = kDefaultDelay;
  Seconds max_age = kDefaultMaxAge;
  Seconds retry_window = kDefaultRetryWindow;
  int awl_threshold = kDefaultAwlThreshold;  // 0 disables the client auto-whitelist
  Seconds trap_ttl = kDefaultTrapTtl;        // how long a greytrap hit traps the client
};

// What the store holds for one request before it is decided. Records older than max-age
// are already removed by the caller (see Live()).
struct PriorState {
  std::optional<ClientRecord> client;    // absent, or AWL disabled
  std::optional<TripletRecord> triplet;  // absent
  std::optional<TrapRecord> trap;        // absent, not trapped (any more), or no greytraps
  // The reply record of (sender, recipient): absent, or not looked up (null sender).
  std::optional<ReplyRecord> reply = std::nullopt;
};

// The pure state transition of one request (postgrey 4.2 steps 6-11): what to answer and
// what to write. A store applies it atomically with the read of PriorState.
//
// The steps, in order: the greytrap list, the client auto-whitelist, the reply record, the
// triplet. A reply (kReply) passes without writing anything: the triplet is neither
// consulted nor created and the auto-whitelist is not counted. It comes after the greytrap
// list because a trap hit is evidence about the client, while a reply pair rests on the
// envelope sender, which the client chooses (spam forging a correspondent of the recipient
// must not get past a trap); and after the auto-whitelist so that an auto-whitelisted
// client keeps its postgrey behaviour (its record is refreshed) and kReply counts only the
// mail reply tracking alone let through.
struct Transition {
  // Why: kGreytrap, kClientAwl, kReply, kNew, kAbandoned, kEarlyRetry, kPassFirst or kPassed.
  Reason reason = Reason::kNew;
  bool client_awl_pass = false;  // the client is auto-whitelisted: pass, triplet untouched
  std::optional<ClientRecord> client_write;  // new client record, if it changes
  // New triplet record: always, unless the client is auto-whitelisted or trapped, the mail
  // is a reply, or the write would only move the last sighting by less than
  // kLastSeenRefresh (GreylistTiming).
  std::optional<TripletRecord> triplet_write;
  UnixTime first{};                    // first sighting after the rules were applied
  bool last_was_successful = false;    // the triplet had already passed before
  bool first_corrected = false;        // stored first sighting was in the future
  bool awl_threshold_reached = false;  // this request made the client auto-whitelisted
  Seconds missing{0};                  // delay - (now - first); > 0 means greylist
  // Greytraps: the client is on the trap list (after this request), so it is greylisted
  // for the time left on the trap and nothing else is written: no triplet is created or
  // advanced and the auto-whitelist is neither honoured nor counted.
  bool trapped = false;
  std::optional<TrapRecord> trap_write;  // a trap hit's new record

  bool greylisted() const { return !client_awl_pass && missing > Seconds(0); }
  friend bool operator==(const Transition&, const Transition&) = default;
};

// `trap_hit`: the request goes to a greytrap address, so the client is put on the trap
// list until max(its current end, now + trap_ttl); a hit never shortens a trap.
// True if `record` puts its client on the auto-whitelist (always false when disabled).
bool AutoWhitelisted(const ClientRecord& record, const GreylistTiming& timing);

// REQUIRES: `prior` holds only live records (see Live()).
Transition Decide(const PriorState& prior, UnixTime now, const GreylistTiming& timing,
                  bool trap_hit = false);

// Whether Decide, given every record of `prior` but the triplet, reads the triplet: not when
// no greytrap applies and the auto-whitelisted client or a live reply decides first. Stores
// read the triplet only then, so an auto-whitelisted client's pass skips the read of the
// largest table (on a large database, its deepest tree descent).
bool ReadsTriplet(const PriorState& prior, UnixTime now, const GreylistTiming& timing,
                  bool trap_hit = false);

// The rules about one stored record, named once: every backend (the Redis script's TTLs
// too), the tool's filters and statistics, explain and the metrics ask these instead of
// re-deriving them.

// The triplet's sender came back after the delay: it has passed greylisting.
bool Passed(const TripletRecord& record, const GreylistTiming& timing);
// A pending triplet whose first attempt is more than the retry window old: the next request
// for it starts over as new.
bool Abandoned(const TripletRecord& record, UnixTime now, const GreylistTiming& timing);
// The first moment at which the background expiry may delete the record:
// Expired(record, now) == (now >= ExpiresAt(record)). A passed triplet and a client record
// live max-age after their last sighting, a pending triplet min(max-age, retry window), a
// trap entry until its trap ends.
UnixTime ExpiresAt(const TripletRecord& record, const GreylistTiming& timing);
UnixTime ExpiresAt(const ClientRecord& record, const GreylistTiming& timing);
UnixTime ExpiresAt(const TrapRecord& record);
// A reply record lives max-age after the last outbound message that refreshed it.
UnixTime ExpiresAt(const ReplyRecord& record, const GreylistTiming& timing);

// The reply record after one more outbound message at `now` (an outbound listener's
// request): the count goes up by one (capped at kMaxRecordField), the last message is now.
// REQUIRES: `prior` is live (see Live()); an expired record starts over at count 1.
ReplyRecord RecordOutbound(const std::optional<ReplyRecord>& prior, UnixTime now);

// max-age is enforced at lookup time (a fix over postgrey, which only enforced it in its
// nightly cleanup): a record last seen more than max-age ago is treated as absent.
std::optional<TripletRecord> Live(std::optional<TripletRecord> record, UnixTime now,
                                  const GreylistTiming& timing);
std::optional<ClientRecord> Live(std::optional<ClientRecord> record, UnixTime now,
                                 const GreylistTiming& timing);
// A trap record is live while it traps.
std::optional<TrapRecord> Live(std::optional<TrapRecord> record, UnixTime now);
// A reply record is live until max-age after its last outbound message.
std::optional<ReplyRecord> Live(std::optional<ReplyRecord> record, UnixTime now,
                                const GreylistTiming& timing);

// The background expiry rules (postgrey section 7): true if the record may be deleted.
bool Expired(const TripletRecord& record, UnixTime now, const GreylistTiming& timing);
bool Expired(const ClientRecord& record, UnixTime now, const GreylistTiming& timing);
bool Expired(const TrapRecord& record, UnixTime now);
bool Expired(const ReplyRecord& record, UnixTime now, const GreylistTiming& timing);

}  // namespace greylight::policy
